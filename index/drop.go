package index

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// DropPacks forgets packs that are gone from (or damaged in) the
// repository: their records and every blob location in them, in one
// transaction. A blob left with no location is no longer known, so the next
// backup stores it again instead of deduplicating against a pack that cannot
// be read. Index file records are kept: the files still list the packs, and
// the packs stay dropped until the cache is rebuilt. Unknown IDs are ignored.
func (ix *Index) DropPacks(ids [][32]byte) error {
	if len(ids) == 0 {
		return nil
	}
	return ix.update(func(tx *bolt.Tx) error {
		packs := tx.Bucket(bucketPacks)
		dropped := map[string]map[[32]byte]bool{}
		for _, id := range ids {
			rec := packs.Get(id[:])
			if rec == nil {
				continue
			}
			s, err := decodePack(id[:], rec)
			if err != nil {
				return fmt.Errorf("index %s: drop pack %x: %w: %w (%s)", ix.path, id, ErrCorrupt, err, rebuildHint)
			}
			if err := packs.Delete(id[:]); err != nil {
				return fmt.Errorf("index %s: drop pack %x: %w", ix.path, id, err)
			}
			if dropped[s.Space] == nil {
				dropped[s.Space] = map[[32]byte]bool{}
			}
			dropped[s.Space][id] = true
		}
		if err := dropSpaceLocations(tx, dropped); err != nil {
			return fmt.Errorf("index %s: drop packs: %w", ix.path, err)
		}
		return nil
	})
}

// dropSpaceLocations removes, in each space's bucket, every location in one
// of that space's dropped packs (dropLocations).
func dropSpaceLocations(tx *bolt.Tx, dropped map[string]map[[32]byte]bool) error {
	spaces := tx.Bucket(bucketSpaces)
	for space, set := range dropped {
		b := spaces.Bucket([]byte(space))
		if b == nil {
			continue
		}
		if err := dropLocations(b, set); err != nil {
			return fmt.Errorf("space %q: %w", space, err)
		}
	}
	return nil
}
