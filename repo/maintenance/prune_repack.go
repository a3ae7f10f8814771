package maintenance

import (
	"context"
	"fmt"
	"sort"

	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// repackPacks copies the blobs each pack to repack still owns into new packs
// of the same space, through the ordinary packer: every blob is opened
// (authenticated), checked against its ID, and sealed again unchanged in its
// stored (compressed or not) form, so a copy is exactly what a backup would
// have written. A blob that fails verification stops the prune before
// anything is deleted. It returns the packs written.
func repackPacks(ctx context.Context, r *repo.Repository, pl *prunePlan, opts PruneOptions, step func(string)) ([]index.PackInfo, error) {
	spaces := make([]string, 0, len(pl.repack))
	for sp := range pl.repack {
		spaces = append(spaces, sp)
	}
	sort.Strings(spaces)
	var written []index.PackInfo
	for _, sp := range spaces {
		pk := r.NewPacker(ctx, sp)
		g, gctx := errgroup.WithContext(ctx)
		// Packs are read whole: two at a time bounds memory to two packs
		// being read plus the packer's three.
		g.SetLimit(2)
		for _, p := range pl.repack[sp] {
			g.Go(func() error { return repackOne(gctx, r, pk, p, opts.Progress) })
		}
		err := g.Wait()
		if err != nil {
			// The packs already written are unindexed garbage for the next prune.
			for range pk.Abort() {
				step("write pack (aborted repack)")
			}
			return nil, err
		}
		packs, _, err := pk.Flush()
		for _, p := range packs {
			step("write " + repo.PackName(p.ID))
		}
		if err != nil {
			return nil, fmt.Errorf("repack space %q: %w", sp, err)
		}
		written = append(written, packs...)
	}
	return written, nil
}

// repackOne reads one pack and hands its owned blobs to the packer.
func repackOne(ctx context.Context, r *repo.Repository, pk *repo.Packer, p *prunePack, prog *repo.Progress) error {
	b, err := repo.ReadRange(ctx, r.Backend(), repo.PackName(p.info.ID), 0, p.size)
	if err != nil {
		return fmt.Errorf("repack pack %s: %w", repo.ShortHex(p.info.ID), err)
	}
	prog.Bytes.Add(p.size)
	owned := append([]int32(nil), p.owned...)
	sort.Slice(owned, func(i, j int) bool { return p.info.Blobs[owned[i]].Offset < p.info.Blobs[owned[j]].Offset })
	for _, k := range owned {
		bl := p.info.Blobs[k]
		end := int64(bl.Offset) + int64(bl.Length)
		if end > int64(len(b)) {
			return repo.Corruptf("pack "+repo.ShortHex(p.info.ID), "blob %s at %d+%d lies beyond the pack's %d bytes", bl.ID.Short(), bl.Offset, bl.Length, len(b))
		}
		stored, err := verifiedStored(r, b[bl.Offset:end], p, bl)
		if err != nil {
			return fmt.Errorf("repack: %w (run 'memento check --read-data'; nothing was deleted)", err)
		}
		if !pk.Claim(bl.ID) {
			continue
		}
		if err := pk.Add(repo.BlobType(bl.Type), bl.ID, bl.Flags, int(bl.RawLength), stored); err != nil {
			return err
		}
	}
	return nil
}

// verifiedStored opens a sealed blob and returns its stored form after
// checking that it decodes to bytes with the blob's ID and raw length.
func verifiedStored(r *repo.Repository, sealed []byte, p *prunePack, bl index.BlobInfo) ([]byte, error) {
	t := repo.BlobType(bl.Type)
	what := "pack " + repo.ShortHex(p.info.ID)
	stored, err := r.Unseal(nil, sealed, repo.BlobAD(t, bl.ID))
	if err != nil {
		return nil, &repo.CorruptError{What: what, Detail: fmt.Sprintf("%s blob %s at offset %d", t, bl.ID.Short(), bl.Offset), Err: err}
	}
	raw := stored
	if bl.Flags&repo.FlagCompressed != 0 {
		if t == repo.TreeBlob {
			raw, err = chunk.DecompressMax(nil, stored, repo.MaxBlobSize)
		} else {
			raw, err = chunk.Decompress(nil, stored)
		}
		if err != nil {
			return nil, &repo.CorruptError{What: what, Detail: fmt.Sprintf("%s blob %s: decompress", t, bl.ID.Short()), Err: err}
		}
	}
	if uint32(len(raw)) != bl.RawLength {
		return nil, repo.Corruptf(what, "%s blob %s: %d bytes, the index says %d", t, bl.ID.Short(), len(raw), bl.RawLength)
	}
	if r.ChunkKey(p.info.Space).Sum(raw) != bl.ID {
		return nil, repo.Corruptf(what, "%s blob %s: content does not match its ID", t, bl.ID.Short())
	}
	return stored, nil
}
