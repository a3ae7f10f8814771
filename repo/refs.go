package repo

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/index"
)

// refRunGap bounds the bytes RefTargets reads through between two frames
// of one pack: a group's members follow it, so a pack of groups is a
// group, its members' frames, the next group...; reading a group through
// costs more than a second request on a local disk only past this.
const refRunGap = 64 << 10

// refRunMax bounds one read of frames: eight reads at once (RefTargets)
// then hold 8 MiB, where runMaxBytes' 4 MiB runs of delta frames (32 KiB
// each) would hold 32 MiB in a prune; 1 MiB holds 13,000 member frames.
const refRunMax = 1 << 20

// RefTargets reads the frames of the delta and member blobs ids of a
// space, at locs (index by index; an id may come twice, at two copies),
// and returns each one's target, a delta's base or a member's group, or why
// it could not be read (a *CorruptError naming the blob, the backend's or
// ctx's error): prune and check keep and look for what a live delta or
// member needs. Only the frames are read and authenticated, not their
// targets. The frames of one pack are read in runs of neighbours, one
// ranged read each (a tree of small files has a member per file: 46k
// frames were as many reads, each a request on S3).
func (r *Repository) RefTargets(ctx context.Context, space string, ids []chunk.ID, locs []index.Location) ([]chunk.ID, []error) {
	targets := make([]chunk.ID, len(ids))
	errs := r.readFrames(ctx, ids, locs, func(i int, sealed []byte) (err error) {
		targets[i], _, err = r.refTarget(ids[i], locs[i], sealed)
		return err
	})
	return targets, errs
}

// MemberFrames reads the frames of the member blobs ids of a space, at locs
// (index by index), as RefTargets does, and returns each one's frame (its
// group and its slice of it, whose length is checked against the index),
// or why it could not be read: a restore of grouped small files reads each
// group once for all the members it restores (repo/restore, group.go).
func (r *Repository) MemberFrames(ctx context.Context, space string, ids []chunk.ID, locs []index.Location) ([]chunk.Member, []error) {
	frames := make([]chunk.Member, len(ids))
	errs := r.readFrames(ctx, ids, locs, func(i int, sealed []byte) error {
		if locs[i].Flags&FlagMember == 0 {
			return Corruptf(memberWhat(ids[i]), "not a member blob (flags %#02x, pack %s)", locs[i].Flags, ShortHex(locs[i].Pack))
		}
		_, m, err := r.refTarget(ids[i], locs[i], sealed)
		if err == nil && m.Length != locs[i].RawLength {
			err = Corruptf(memberWhat(ids[i]), "member of %d bytes, index says %d (pack %s)", m.Length, locs[i].RawLength, ShortHex(locs[i].Pack))
		}
		frames[i] = m
		return err
	})
	return frames, errs
}

// readFrames reads the sealed frames of blobs ids at locs in runs of pack
// neighbours, eight runs at once, and calls open with each (scratch: it is
// opened in place), on the runs' goroutines; it returns each blob's error,
// open's or its run's.
func (r *Repository) readFrames(ctx context.Context, ids []chunk.ID, locs []index.Location, open func(i int, sealed []byte) error) []error {
	errs := make([]error, len(ids))
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := slices.Compare(locs[a].Pack[:], locs[b].Pack[:]); c != 0 {
			return c
		}
		return int(locs[a].Offset) - int(locs[b].Offset)
	})
	var runs []*blobRun
	var which [][]int
	for _, i := range order {
		if n := len(runs); n > 0 && runs[n-1].add(ids[i], locs[i], refRunMax, refRunGap) {
			which[n-1] = append(which[n-1], i)
			continue
		}
		runs = append(runs, newBlobRun(ids[i], locs[i]))
		which = append(which, []int{i})
	}
	var g errgroup.Group
	g.SetLimit(8)
	for k, run := range runs {
		g.Go(func() error {
			buf, err := run.read(ctx, r.be)
			if err != nil {
				for _, i := range which[k] {
					errs[i] = fmt.Errorf("data blob %s: %w", ids[i].Short(), err)
				}
				return nil
			}
			defer chunk.PutBuffer(buf)
			for j, i := range which[k] {
				errs[i] = open(i, run.sealed(*buf, j))
			}
			return nil
		})
	}
	_ = g.Wait()
	return errs
}

// refTarget authenticates and parses the frame of delta or member id at
// loc, sealed in place (scratch), and returns the blob it names (and a
// member's frame).
func (r *Repository) refTarget(id chunk.ID, loc index.Location, sealed []byte) (chunk.ID, chunk.Member, error) {
	what := deltaWhat(id)
	delta, member := loc.Flags&FlagDelta != 0, loc.Flags&FlagMember != 0
	switch {
	case !delta && !member:
		return chunk.ID{}, chunk.Member{}, Corruptf(what, "not a delta or member blob (flags %#02x, pack %s)", loc.Flags, ShortHex(loc.Pack))
	case BlobType(loc.Type) != DataBlob || loc.Flags&FlagCompressed != 0 || delta && member:
		return chunk.ID{}, chunk.Member{}, Corruptf(what, "a %s blob with flags %#02x (pack %s)", BlobType(loc.Type), loc.Flags, ShortHex(loc.Pack))
	}
	plain, err := openInPlace(r.seal, sealed, blobAD(DataBlob, id))
	if err != nil {
		return chunk.ID{}, chunk.Member{}, &CorruptError{What: "pack " + ShortHex(loc.Pack), Detail: fmt.Sprintf("data blob %s at offset %d", id.Short(), loc.Offset), Err: err}
	}
	if member {
		m, err := chunk.ParseMember(plain)
		if err != nil {
			return chunk.ID{}, chunk.Member{}, &CorruptError{What: what, Detail: "member frame in pack " + ShortHex(loc.Pack), Err: err}
		}
		if m.Group == id {
			return chunk.ID{}, chunk.Member{}, Corruptf(what, "member of itself (pack %s)", ShortHex(loc.Pack))
		}
		return m.Group, m, nil
	}
	d, err := chunk.ParseDelta(plain)
	if err != nil {
		return chunk.ID{}, chunk.Member{}, &CorruptError{What: what, Detail: "delta frame in pack " + ShortHex(loc.Pack), Err: err}
	}
	if d.Base == id {
		return chunk.ID{}, chunk.Member{}, Corruptf(what, "delta on itself")
	}
	return d.Base, chunk.Member{}, nil
}
