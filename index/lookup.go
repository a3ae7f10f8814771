package index

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"memento/chunk"
)

// Lookup resolves a batch of blob IDs of one space to their locations, in
// one read-only transaction. IDs the space does not have are absent from the
// result; other spaces are never consulted. When a blob is stored in several
// packs, the location merged first is returned.
func (ix *Index) Lookup(space string, ids []chunk.ID) (map[chunk.ID]Location, error) {
	out := make(map[chunk.ID]Location, len(ids))
	err := ix.lookup(space, ids, func(id chunk.ID, v []byte) error {
		l, err := firstLocation(v)
		out[id] = l
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LookupAll is Lookup returning every known location of each blob, for
// restore to fall back on a second copy when a pack is damaged.
func (ix *Index) LookupAll(space string, ids []chunk.ID) (map[chunk.ID][]Location, error) {
	out := make(map[chunk.ID][]Location, len(ids))
	err := ix.lookup(space, ids, func(id chunk.ID, v []byte) error {
		ls, err := DecodeLocations(v)
		out[id] = ls
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lookup calls decode with the stored locations of every id of space the
// index has, in key order (sequential page access), in one read transaction.
func (ix *Index) lookup(space string, ids []chunk.ID, decode func(id chunk.ID, v []byte) error) error {
	return ix.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSpaces).Bucket([]byte(space))
		if b == nil {
			return nil
		}
		for _, id := range sortedIDs(ids) {
			v := b.Get(id[:])
			if v == nil {
				continue
			}
			if err := decode(id, v); err != nil {
				return fmt.Errorf("index %s: space %q blob %s: %w: %w (%s)", ix.path, space, id, ErrCorrupt, err, rebuildHint)
			}
		}
		return nil
	})
}

// sortedIDs returns a sorted copy of ids: lookups in key order walk the
// B+tree's pages in order, which keeps branch pages hot and lets the
// kernel's fault-around map neighbouring leaves in one go.
func sortedIDs(ids []chunk.ID) []chunk.ID {
	s := slices.Clone(ids)
	slices.SortFunc(s, func(a, b chunk.ID) int { return bytes.Compare(a[:], b[:]) })
	return s
}

// BlobCount returns the number of distinct blobs of a space.
func (ix *Index) BlobCount(space string) (int, error) {
	n := 0
	err := ix.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSpaces).Bucket([]byte(space)); b != nil {
			n = int(b.Sequence())
		}
		return nil
	})
	return n, err
}

// SpaceIDs returns the IDs of all blobs of a space, which a backup loads
// once at start so its dedup check is a map lookup, not a transaction.
func (ix *Index) SpaceIDs(space string) (map[chunk.ID]struct{}, error) {
	ids, _, err := ix.SpaceScan(space, nil)
	return ids, err
}

// SpaceScan is SpaceIDs that also returns the first location of every blob
// whose type keep accepts (nil: none), from the same pass over the space's
// blobs. A backup takes the locations of the tree blobs this way: it reads
// the parent snapshot's trees one directory at a time, and a Lookup per
// tree would open the cache file once per directory.
func (ix *Index) SpaceScan(space string, keep func(blobType uint8) bool) (map[chunk.ID]struct{}, map[chunk.ID]Location, error) {
	return ix.spaceScan(space, true, keep)
}

// SpaceLocations returns the first location of every blob of a space whose
// type keep accepts, in one pass: SpaceScan without the set of all IDs.
func (ix *Index) SpaceLocations(space string, keep func(blobType uint8) bool) (map[chunk.ID]Location, error) {
	_, locs, err := ix.spaceScan(space, false, keep)
	return locs, err
}

func (ix *Index) spaceScan(space string, wantIDs bool, keep func(blobType uint8) bool) (map[chunk.ID]struct{}, map[chunk.ID]Location, error) {
	var out map[chunk.ID]struct{}
	locs := map[chunk.ID]Location{}
	err := ix.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSpaces).Bucket([]byte(space))
		if b == nil {
			out = map[chunk.ID]struct{}{}
			return nil
		}
		if wantIDs {
			out = make(map[chunk.ID]struct{}, min(b.Sequence(), 1<<28))
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != len(chunk.ID{}) {
				return fmt.Errorf("index %s: space %q: %w: key of %d bytes (%s)", ix.path, space, ErrCorrupt, len(k), rebuildHint)
			}
			id := chunk.ID(k)
			if wantIDs {
				out[id] = struct{}{}
			}
			if keep == nil || len(v) < LocationSize || !keep(v[44]) {
				continue
			}
			l, err := firstLocation(v)
			if err != nil {
				return fmt.Errorf("index %s: space %q blob %s: %w: %w (%s)", ix.path, space, id, ErrCorrupt, err, rebuildHint)
			}
			locs[id] = l
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, locs, nil
}

// Spaces returns the names of the spaces that have blobs in the cache.
func (ix *Index) Spaces() ([]string, error) {
	var out []string
	err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSpaces).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

// Packs returns every pack the cache knows, ordered by ID, without blobs.
func (ix *Index) Packs() ([]PackSummary, error) {
	var out []PackSummary
	err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPacks).ForEach(func(k, v []byte) error {
			s, err := decodePack(k, v)
			if err != nil {
				return fmt.Errorf("index %s: %w: %w (%s)", ix.path, ErrCorrupt, err, rebuildHint)
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
