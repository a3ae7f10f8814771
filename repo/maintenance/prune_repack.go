package maintenance

import (
	"bytes"
	"context"
	"fmt"
	"slices"
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
func repackPacks(ctx context.Context, r pruneRepo, pl *prunePlan, opts PruneOptions, step func(string)) ([]index.PackInfo, error) {
	spaces := make([]string, 0, len(pl.repack))
	for sp := range pl.repack {
		spaces = append(spaces, sp)
	}
	sort.Strings(spaces)
	var written []index.PackInfo
	var pipe *chunk.Pipeline // compresses new groups (prune_regroup.go)
	if len(pl.regroup) > 0 {
		pipe = chunk.NewPipeline(1, chunk.DefaultLevel)
		defer pipe.Close()
	}
	for _, sp := range spaces {
		pk := r.NewPacker(ctx, sp)
		var rg *regrouper
		if len(pl.regroup[sp]) > 0 {
			rg = newRegrouper(r, pk, sp, pipe)
		}
		g, gctx := errgroup.WithContext(ctx)
		// Packs are read whole: two at a time bounds memory to two packs
		// being read plus the packer's (one filling, and the ones being
		// written: two on a local directory), and a copy of a pack holding
		// members to regroup (repackOne) with the groups' cache.
		g.SetLimit(2)
		for _, p := range pl.repack[sp] {
			g.Go(func() error { return repackOne(gctx, r, pk, rg, pl, p, opts.Progress) })
		}
		err := g.Wait()
		if err == nil && rg != nil {
			err = rg.flush()
		}
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

// repackOne reads one pack and hands its owned blobs to the packer: their
// stored form, or, for the members of a group regrouped, their plaintext
// to rg.
func repackOne(ctx context.Context, r pruneRepo, pk *repo.Packer, rg *regrouper, pl *prunePlan, p *prunePack, prog *repo.Progress) error {
	b, err := repo.ReadRange(ctx, r.Backend(), repo.PackName(p.info.ID), 0, p.size)
	if err != nil {
		return fmt.Errorf("repack pack %s: %w", repo.ShortHex(p.info.ID), err)
	}
	prog.Bytes.Add(p.size)
	owned := append([]int32(nil), p.owned...)
	sort.Slice(owned, func(i, j int) bool { return p.info.Blobs[owned[i]].Offset < p.info.Blobs[owned[j]].Offset })
	ids := make([]chunk.ID, 0, len(owned))
	locs := make([]index.Location, 0, len(owned))
	var rids []chunk.ID
	var rlocs []index.Location
	regroup := pl.regroup[p.info.Space]
	k := int32(slices.Index(pl.inv.packs, p))
	for _, o := range owned {
		bl := p.info.Blobs[o]
		if end := int64(bl.Offset) + int64(bl.Length); end > int64(len(b)) {
			return repo.Corruptf("pack "+repo.ShortHex(p.info.ID), "blob %s at %d+%d lies beyond the pack's %d bytes", bl.ID.Short(), bl.Offset, bl.Length, len(b))
		}
		loc := index.Location{Pack: p.info.ID, Offset: bl.Offset, Length: bl.Length, RawLength: bl.RawLength, Type: bl.Type, Flags: bl.Flags}
		if bl.Flags&repo.FlagMember != 0 && rg != nil && regroup[pl.m.frames[pruneBlobRef{k, o}]] {
			rids, rlocs = append(rids, bl.ID), append(rlocs, loc)
			continue
		}
		ids, locs = append(ids, bl.ID), append(locs, loc)
	}
	if len(rids) > 0 {
		// On a copy: streamPacked leaves its buffer scratch.
		if err := regroupMembers(ctx, r, pk, rg, p, bytes.Clone(b), rids, rlocs); err != nil {
			return err
		}
	}
	// Every blob is opened and verified as any reader does, from the pack
	// in memory, and its stored form sealed again unchanged, in pack order.
	return streamPacked(ctx, r, p.info.Space, b, ids, locs, true, func(sb repo.StreamBlob) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if sb.Err != nil {
			return fmt.Errorf("repack: %w (run 'memento check --read-data'; nothing was deleted)", sb.Err)
		}
		if !pk.Claim(sb.ID) {
			return nil
		}
		return pk.Add(repo.BlobType(sb.Loc.Type), sb.ID, sb.Loc.Flags, int(sb.Loc.RawLength), sb.Data)
	})
}

// streamPacked opens the blobs ids of a pack read whole (b, which is
// scratch afterwards) at locs, through repo.StreamBlobs, and calls fn with
// each in the order given: its plaintext, or its stored form when stored,
// valid during the call only. Blobs of both types may share a pack: there
// is one stream per stretch of blobs of one type.
func streamPacked(ctx context.Context, r blobStreamer, space string, b []byte, ids []chunk.ID, locs []index.Location, stored bool, fn func(repo.StreamBlob) error) error {
	for len(ids) > 0 {
		t, n := repo.BlobType(locs[0].Type), 1
		for n < len(locs) && repo.BlobType(locs[n].Type) == t {
			n++
		}
		opts := repo.StreamOptions{RunBytes: int64(len(b)), Buffer: repo.BufferBorrowed, Locs: locs[:n], Packed: b, Stored: stored}
		if err := r.StreamBlobs(ctx, space, t, ids[:n], opts, fn); err != nil {
			return err
		}
		ids, locs = ids[n:], locs[n:]
	}
	return nil
}
