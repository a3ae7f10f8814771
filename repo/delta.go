package repo

import (
	"cmp"
	"context"
	"fmt"

	"memento/chunk"
	"memento/index"
)

// Delta blobs (format 4, FlagDelta): a data chunk stored as the ID of a
// base chunk of the same length and the 4 KiB pages that differ from it
// (chunk.ParseDelta). Readers get the full plaintext: openSealed hands a
// delta to openDelta, which reads the base through the index, applies the
// pages and checks the result against the chunk's ID, as for any blob. A
// base is never itself a delta (depth 1). The link from a delta to its base
// is recorded in the delta's own (sealed) frame only: the FlagDelta bit of
// the pack header and the index says which blobs to read for it (prune and
// check: RefTargets), so index rebuilds and replication, which copy packs
// whole, keep it without any change to the index's formats.

// deltaWhat names a delta chunk in errors.
func deltaWhat(id chunk.ID) string { return "data blob " + id.Short() }

// openDelta is openSealed for a delta blob: plain is its decrypted frame.
func (r *Repository) openDelta(ctx context.Context, plain []byte, space string, t BlobType, id chunk.ID, loc index.Location, mode openMode, stored bool, a blobAlloc) ([]byte, *[]byte, error) {
	what := deltaWhat(id)
	if t != DataBlob || loc.Flags&FlagCompressed != 0 {
		return nil, nil, Corruptf(what, "delta flag on a %s blob with flags %#02x (pack %s)", t, loc.Flags, ShortHex(loc.Pack))
	}
	d, err := chunk.ParseDelta(plain)
	if err != nil {
		return nil, nil, &CorruptError{What: what, Detail: "delta frame in pack " + ShortHex(loc.Pack), Err: err}
	}
	if uint32(d.RawLength) != loc.RawLength {
		return nil, nil, Corruptf(what, "delta of %d bytes, index says %d (pack %s)", d.RawLength, loc.RawLength, ShortHex(loc.Pack))
	}
	base, err := r.deltaBase(ctx, space, id, d)
	if err != nil {
		return nil, nil, err
	}
	var out *[]byte
	var dst, fresh []byte
	if mode == openPooled && !stored {
		out = a.pooled(d.RawLength)
		dst = *out
	} else {
		fresh = a.get(d.RawLength)
		dst = fresh
	}
	fail := func(err error) ([]byte, *[]byte, error) {
		if out != nil {
			*out = dst // the buffer as given, whatever raw is
			a.putPooled(out)
		}
		a.put(fresh)
		return nil, nil, err
	}
	raw, err := chunk.ApplyDelta(dst, d, base)
	if err != nil {
		return fail(&CorruptError{What: what, Detail: "delta on base " + d.Base.Short(), Err: err})
	}
	if err := checkRaw(r.ChunkKey(space), raw, t, id, loc); err != nil {
		return fail(err)
	}
	if out != nil {
		if !sameStart(raw, dst) {
			a.mem.Put(dst)
		}
		*out = raw
	}
	if stored {
		a.put(fresh)
		s, o := copyOut(plain, mode)
		return s, o, nil
	}
	return raw, out, nil
}

// deltaBase reads the verified plaintext of delta id's base from a copy
// the index knows that is stored whole (readWhole).
func (r *Repository) deltaBase(ctx context.Context, space string, id chunk.ID, d chunk.Delta) ([]byte, error) {
	what := deltaWhat(id)
	if d.Base == id {
		return nil, Corruptf(what, "delta on itself")
	}
	return r.readWhole(ctx, space, what, "delta base", d.Base, func(l index.Location) error {
		if l.RawLength != uint32(d.RawLength) {
			return Corruptf(what, "delta of %d bytes on base %s of %d", d.RawLength, d.Base.Short(), l.RawLength)
		}
		return nil
	})
}

// readWhole reads the verified plaintext of data blob ref, which what (a
// blob stored as a reference to it: a delta's base, a member's group,
// named role in errors) needs, from a copy the index knows that is stored
// whole: not itself a delta nor a member (depth 1). vet refuses a copy
// that cannot be it (a base's length). When the copy locateWhole gives
// fails, every other copy the index knows is tried, as StreamBlobs'
// fallback does for any blob.
func (r *Repository) readWhole(ctx context.Context, space, what, role string, ref chunk.ID, vet func(index.Location) error) ([]byte, error) {
	locs, err := r.locateWhole(space, ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", what, role, ref.Short(), err)
	}
	if len(locs) == 0 {
		return nil, &CorruptError{What: what, Detail: role + " " + ref.Short() + " is in no pack the index knows", Err: ErrNotFound}
	}
	var firstErr error
	tried := map[index.Location]bool{}
	for pass := 0; pass < 2; pass++ {
		if pass == 1 {
			if firstErr == nil {
				break // no whole copy: only deltas or members
			}
			alts, err := r.ix.LookupAll(StorageSpace(space), []chunk.ID{ref})
			if err != nil {
				break
			}
			locs = alts[ref]
		}
		for _, l := range locs {
			if !storedWhole(l) || tried[l] {
				continue
			}
			tried[l] = true
			if BlobType(l.Type) != DataBlob {
				firstErr = cmp.Or(firstErr, Corruptf(what, "%s %s is a %s blob", role, ref.Short(), BlobType(l.Type)))
				continue
			}
			if err := vet(l); err != nil {
				firstErr = cmp.Or(firstErr, err)
				continue
			}
			b, err := r.readBaseAt(ctx, space, ref, l)
			if err == nil {
				return b, nil
			}
			firstErr = cmp.Or(firstErr, fmt.Errorf("%s: %s %s: %w", what, role, ref.Short(), err))
		}
	}
	if firstErr == nil {
		firstErr = Corruptf(what, "%s %s is itself a delta or a member (it must be stored whole)", role, ref.Short())
	}
	return nil, firstErr
}

// storedWhole reports whether the blob at l is stored whole (StoredWhole).
func storedWhole(l index.Location) bool { return StoredWhole(l.Flags) }

// StoredWhole reports whether a blob of these flags is stored whole:
// neither a delta nor a member, whose stored forms name another blob (a
// base, a group) for their bytes.
func StoredWhole(flags uint8) bool { return flags&(FlagDelta|FlagMember) == 0 }

// readDeltaFrame reads, authenticates and parses one delta's frame.
func (r *Repository) readDeltaFrame(ctx context.Context, id chunk.ID, loc index.Location) (chunk.ID, error) {
	if loc.Flags&FlagDelta == 0 {
		return chunk.ID{}, Corruptf(deltaWhat(id), "not a delta blob (flags %#02x)", loc.Flags)
	}
	sealed, err := r.readSealed(ctx, DataBlob, id, loc)
	if err != nil {
		return chunk.ID{}, err
	}
	base, _, err := r.refTarget(id, loc, sealed)
	return base, err
}

// DeltaBase returns the base a new delta of the chunk at the place of prev
// (a chunk of n bytes the repository holds) is made against, and its
// verified plaintext: prev itself when a copy of it is stored whole, else
// the base of prev's delta (a base is never a delta). A backup of a file
// cut at fixed offsets calls it for a chunk that replaced prev.
func (r *Repository) DeltaBase(ctx context.Context, space string, prev chunk.ID, n int) (chunk.ID, []byte, error) {
	locs, err := r.locateWhole(space, prev)
	if err != nil {
		return chunk.ID{}, nil, err
	}
	var delta []index.Location
	for _, l := range locs {
		switch {
		case l.RawLength != uint32(n) || BlobType(l.Type) != DataBlob:
			return chunk.ID{}, nil, fmt.Errorf("data blob %s: %d bytes, not %d", prev.Short(), l.RawLength, n)
		case l.Flags&FlagDelta != 0:
			delta = append(delta, l)
		case l.Flags&FlagMember != 0:
			// a member's bytes are a slice of its group: no base (depth 1)
		default:
			if b, err := r.readBaseAt(ctx, space, prev, l); err == nil {
				return prev, b, nil
			}
		}
	}
	for _, l := range delta {
		base, err := r.readDeltaFrame(ctx, prev, l)
		if err != nil {
			continue
		}
		if b, err := r.deltaBase(ctx, space, prev, chunk.Delta{Base: base, RawLength: n}); err == nil {
			return base, b, nil
		}
	}
	return chunk.ID{}, nil, fmt.Errorf("data blob %s: no readable copy to make a delta against", prev.Short())
}

// maxCachedData bounds the data blob locations locateWhole's pass puts into
// the location cache for a space (about 30 MiB, as for trees).
const maxCachedData = 1 << 18

// locateWhole returns the locations of data blob id to read it as a base
// or a group:
// the cached one when it is stored whole, else every copy the index knows.
// The first base of a space missing from the cache puts the locations of
// the space's data blobs into it in one pass over the index, as
// cacheTreeLocations does for trees: a base is an old chunk no snapshot
// being read lists, and each index transaction opens and maps the index
// file (one per delta doubled the system time of a backup and a restore
// after a day).
func (r *Repository) locateWhole(space string, id chunk.ID) ([]index.Location, error) {
	space = StorageSpace(space)
	r.mu.Lock()
	l, ok := r.locs[space][id]
	done := r.dataCached[space]
	r.mu.Unlock()
	if !ok && !done {
		n := 0
		if all, err := r.ix.SpaceLocations(space, func(t uint8) bool {
			if BlobType(t) != DataBlob || n >= maxCachedData {
				return false
			}
			n++
			return true
		}); err == nil {
			r.cacheLocations(space, all)
		}
		r.mu.Lock()
		if r.dataCached == nil {
			r.dataCached = map[string]bool{}
		}
		r.dataCached[space] = true
		l, ok = r.locs[space][id]
		r.mu.Unlock()
	}
	if ok && storedWhole(l) {
		return []index.Location{l}, nil
	}
	alts, err := r.ix.LookupAll(space, []chunk.ID{id})
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	return alts[id], nil
}

// uncachedReader is what a Backend's reader may offer to read a small range
// around the page cache (the local backend: O_DIRECT).
type uncachedReader interface {
	ReadIntoUncached(buf []byte) ([]byte, error)
}

// readBaseAt reads and opens the base of a delta (a whole data blob) at
// loc, around the page cache where the backend can: bases are small reads
// scattered over cold packs, where the kernel's readahead read many times
// their bytes.
func (r *Repository) readBaseAt(ctx context.Context, space string, id chunk.ID, loc index.Location) ([]byte, error) {
	rc, err := r.be.Open(ctx, PackName(loc.Pack), int64(loc.Offset), int64(loc.Length))
	if err != nil {
		return r.readBlobAt(ctx, space, DataBlob, id, loc) // its errors
	}
	ur, ok := rc.(uncachedReader)
	if !ok {
		rc.Close()
		return r.readBlobAt(ctx, space, DataBlob, id, loc)
	}
	buf := chunk.Buffer(int(loc.Length) + ReadSlack)
	defer chunk.PutBuffer(buf)
	sealed, err := ur.ReadIntoUncached((*buf)[:cap(*buf)])
	rc.Close()
	if err != nil {
		return r.readBlobAt(ctx, space, DataBlob, id, loc)
	}
	raw, _, err := r.openSealed(ctx, sealed, space, DataBlob, id, loc, openFresh, false, false, blobAlloc{})
	return raw, err
}
