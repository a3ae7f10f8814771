package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/walarchive"
)

// walArchive is L2's part for a space snapshot's point-in-time range: the
// archived segments that extend the snapshot (from its WAL end on, for as
// long as their sequences join up) are chunks only the archive holds, which
// no snapshot's L2 would otherwise read. Each is read chunk by chunk, every
// chunk authenticated and checked against its keyed hash, and the segment's
// BLAKE3 recomputed and compared with its record. With --subset only the
// chunks in the selected packs are read (and no segment hash is compared).
func (v *Verifier) walArchive(ctx context.Context, sn *repo.Snapshot, vd *Verdict) error {
	if sn.Space == "" || sn.Engram == nil || sn.Engram.WALEnd.Seq == 0 {
		return nil
	}
	if err := v.packsListed(ctx); err != nil {
		return err
	}
	arch, err := walarchive.LoadSnapshotTimeline(ctx, v.wal, sn)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		vd.fail(L2, "WAL archive of space "+sn.Space, "%v", err)
		return nil
	}
	next := sn.Engram.WALEnd.Seq + 1
	var segs, read int64
	for _, rec := range arch.Chain() {
		if rec.LastSeq < next {
			continue
		}
		if rec.FirstSeq > next {
			break // a gap ends the range
		}
		segs++
		n, err := v.walSegment(ctx, sn.Space, rec, vd)
		read += n
		if err != nil {
			return err
		}
		next = rec.LastSeq + 1
	}
	vd.Figures["wal_archive_segments"] = float64(segs)
	vd.Figures["wal_archive_bytes"] = float64(read)
	return nil
}

// walSegment verifies one archived segment and returns the bytes it read.
// Damage is a finding; the error is for being unable to verify.
func (v *Verifier) walSegment(ctx context.Context, space string, rec *walarchive.WALSegmentRecord, vd *Verdict) (int64, error) {
	what := fmt.Sprintf("archived WAL segment %s (seq %d..%d)", rec.Name, rec.FirstSeq, rec.LastSeq)
	ids := make([]chunk.ID, len(rec.Chunks))
	for i, c := range rec.Chunks {
		ids[i] = c.ID
	}
	locs, err := v.wal.Index().Lookup(repo.StorageSpace(space), ids)
	if err != nil {
		return 0, fmt.Errorf("local index %s: %w", v.wal.Index().Path(), err)
	}
	h := blake3.New()
	whole := true
	var read int64
	// The chunks up to the first that cannot be read at all, less those
	// outside the subset, are read in runs of pack neighbours, in order.
	var reads []chunk.ID
	var readLocs []index.Location
	var at []int    // at[k]: the chunk reads[k] is
	var stop func() // the finding that ends the segment after the reads
	for i, c := range rec.Chunks {
		loc, ok := locs[c.ID]
		switch {
		case !ok:
			stop = func() { vd.fail(L2, what, "chunk %d (%s) is in no pack of the repository", i, c.ID.Short()) }
		case v.packSizes[loc.Pack] == 0 && !v.packWrittenSince(ctx, loc.Pack):
			stop = func() {
				vd.fail(L2, what, "chunk %d (%s) is in pack %s, which is missing from the repository", i, c.ID.Short(), repo.ShortHex(loc.Pack))
			}
		case !v.opts.Subset.selects(loc.Pack):
			whole = false
			continue
		}
		if stop != nil {
			break
		}
		reads, readLocs, at = append(reads, c.ID), append(readLocs, loc), append(at, i)
	}
	opts := repo.StreamOptions{Buffer: repo.BufferBorrowed, Locs: readLocs}
	err = v.wal.StreamBlobs(ctx, space, repo.DataBlob, reads, opts, func(b repo.StreamBlob) error {
		i, c := at[b.Index], rec.Chunks[at[b.Index]]
		if b.Err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			vd.fail(L2, what, "chunk %d: %v", i, b.Err)
			return errSegmentDamaged
		}
		read += int64(b.Loc.Length)
		v.opts.Progress.Bytes.Add(int64(b.Loc.Length))
		if len(b.Data) != int(c.Size) {
			vd.fail(L2, what, "chunk %d (%s) holds %d bytes, the record says %d", i, c.ID.Short(), len(b.Data), c.Size)
			return errSegmentDamaged
		}
		h.Write(b.Data)
		return nil
	})
	switch {
	case errors.Is(err, errSegmentDamaged):
		return read, nil
	case err != nil:
		return read, err
	}
	if stop != nil {
		stop()
		return read, nil
	}
	if whole {
		var sum repo.Hash
		h.Sum(sum[:0])
		if sum != rec.BLAKE3 {
			vd.fail(L2, what, "BLAKE3 of its %d bytes differs from the record", rec.Size)
		}
	}
	return read, nil
}

// errSegmentDamaged stops reading a segment at its first damaged chunk (a
// finding already reported).
var errSegmentDamaged = errors.New("archived WAL segment damaged")

// packWrittenSince reports whether a pack missing from the listing NewVerifier
// took exists now: the WAL archive is loaded after that listing, and a `wal
// watch` (or the agent) running meanwhile writes packs and then the records
// that name them, so a record newer than the listing may name a newer pack.
func (v *Verifier) packWrittenSince(ctx context.Context, pack [32]byte) bool {
	n, err := v.wal.Backend().Stat(ctx, repo.PackName(pack))
	return err == nil && n > 0
}
