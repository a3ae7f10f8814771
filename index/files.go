package index

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"memento/chunk"
)

// LoadedFiles returns the names of the repository index files already merged
// into the cache; the caller merges the others (AddFile) before a backup.
func (ix *Index) LoadedFiles() (map[string]bool, error) {
	out := map[string]bool{}
	err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiles).ForEach(func(k, _ []byte) error {
			out[string(k)] = true
			return nil
		})
	})
	return out, err
}

// blobPut is one location to merge into a space bucket.
type blobPut struct {
	id  chunk.ID
	loc Location
}

// File is one repository index file: its name and the packs it lists.
type File struct {
	Name  string
	Packs []PackInfo
}

// AddFile merges one repository index file (its name and the packs it
// lists) in a single transaction and marks name as loaded. Merging a name
// that is already loaded is a no-op, since repository files are immutable.
// A blob already known at another location keeps both (it is in two packs
// when two backups stored it at once); Lookup returns the first one.
func (ix *Index) AddFile(name string, packs []PackInfo) error {
	return ix.AddFiles([]File{{Name: name, Packs: packs}})
}

// AddFiles is AddFile for many index files in one transaction, for a
// rebuild or a first load: one commit (and fsync) instead of one per file.
// Either all of them are merged or, on error, none.
func (ix *Index) AddFiles(files []File) error {
	for _, f := range files {
		if f.Name == "" || len(f.Name) > bolt.MaxKeySize {
			return fmt.Errorf("index %s: add file: invalid name %q", ix.path, f.Name)
		}
		for i := range f.Packs {
			if err := f.Packs[i].validate(); err != nil {
				return fmt.Errorf("index %s: add file %s: pack %x: %w", ix.path, f.Name, f.Packs[i].ID, err)
			}
		}
	}
	return ix.update(func(tx *bolt.Tx) error {
		filesB := tx.Bucket(bucketFiles)
		packsB := tx.Bucket(bucketPacks)
		// Each space's puts in one allocation: appended one by one, the
		// 12,600 of a first backup of Go's src/ (1 MiB) were grown and
		// copied a dozen times, 6 of the merge's 37 ms.
		counts := map[string]int{}
		for _, f := range files {
			for _, p := range f.Packs {
				counts[p.Space] += len(p.Blobs)
			}
		}
		bySpace := make(map[string][]blobPut, len(counts))
		for space, n := range counts {
			bySpace[space] = make([]blobPut, 0, n)
		}
		for _, f := range files {
			if filesB.Get([]byte(f.Name)) != nil {
				continue // loaded before, or earlier in this batch
			}
			if err := putPacks(packsB, f.Name, f.Packs); err != nil {
				return fmt.Errorf("index %s: add file %s: %w", ix.path, f.Name, err)
			}
			packIDs := make([]byte, 0, 32*len(f.Packs))
			for _, p := range f.Packs {
				packIDs = append(packIDs, p.ID[:]...)
				puts := bySpace[p.Space]
				for _, b := range p.Blobs {
					puts = append(puts, blobPut{id: b.ID, loc: Location{
						Pack: p.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type, Flags: b.Flags,
					}})
				}
				bySpace[p.Space] = puts
			}
			if err := filesB.Put([]byte(f.Name), packIDs); err != nil {
				return fmt.Errorf("index %s: add file %s: %w", ix.path, f.Name, err)
			}
		}
		spaces := tx.Bucket(bucketSpaces)
		for space, puts := range bySpace {
			// bbolt inserts sorted keys into neighbouring pages: far fewer
			// page splits and copies than random order.
			slices.SortFunc(puts, func(a, b blobPut) int { return bytes.Compare(a.id[:], b.id[:]) })
			b, err := spaces.CreateBucketIfNotExists([]byte(space))
			if err != nil {
				return fmt.Errorf("index %s: space %q: %w", ix.path, space, err)
			}
			added, err := putBlobs(b, puts)
			if err != nil {
				return fmt.Errorf("index %s: space %q: %w", ix.path, space, err)
			}
			if err := b.SetSequence(b.Sequence() + uint64(added)); err != nil {
				return fmt.Errorf("index %s: space %q: %w", ix.path, space, err)
			}
		}
		return nil
	})
}

func putPacks(b *bolt.Bucket, file string, packs []PackInfo) error {
	for i := range packs {
		p := &packs[i]
		s := PackSummary{ID: p.ID, Size: p.Size, Space: p.Space, Blobs: len(p.Blobs)}
		if old := b.Get(p.ID[:]); old != nil {
			prev, err := decodePack(p.ID[:], old)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			if prev.Space != p.Space || prev.Size != p.Size {
				return fmt.Errorf("pack %x listed as %d bytes of space %q, already known as %d bytes of space %q",
					p.ID, p.Size, p.Space, prev.Size, prev.Space)
			}
			s.Files = prev.Files
		}
		s.addFile(file)
		if err := b.Put(p.ID[:], encodePack(s)); err != nil {
			return err
		}
	}
	return nil
}

// putBlobs merges sorted puts into a space bucket. bbolt keeps references
// to keys and values until commit, so values are carved from one arena and
// keys point into puts.
// It returns how many new keys it added; the space bucket's sequence
// counts its keys so SpaceIDs can size its map in one go.
func putBlobs(b *bolt.Bucket, puts []blobPut) (added int, err error) {
	arena := make([]byte, 0, len(puts)*LocationSize)
	for i := range puts {
		p := &puts[i]
		if i > 0 && *p == puts[i-1] {
			continue
		}
		var val []byte
		if old := b.Get(p.id[:]); old != nil {
			if err := checkLocations(old); err != nil {
				return 0, fmt.Errorf("%w: blob %s: %w", ErrCorrupt, p.id, err)
			}
			if hasLocation(old, p.loc) {
				continue
			}
			val = make([]byte, 0, len(old)+LocationSize)
			val = appendLocation(append(val, old...), p.loc)
		} else {
			added++
			start := len(arena)
			arena = appendLocation(arena, p.loc)
			val = arena[start:len(arena):len(arena)]
		}
		if err := b.Put(p.id[:], val); err != nil {
			return 0, err
		}
	}
	return added, nil
}

// hasLocation reports whether enc already holds l's pack and offset, which
// identify a stored blob.
func hasLocation(enc []byte, l Location) bool {
	for i := 0; i < len(enc); i += LocationSize {
		d := decodeLocation(enc[i:])
		if d.Pack == l.Pack && d.Offset == l.Offset {
			return true
		}
	}
	return false
}

// RemoveFile forgets a repository index file, for prune: the packs it listed
// are dropped unless another loaded index file lists them too, and so are the
// blob locations in dropped packs. Removing a name that is not loaded is a
// no-op. It scans the bucket of every space a dropped pack belonged to.
func (ix *Index) RemoveFile(name string) error {
	return ix.update(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		ids := files.Get([]byte(name))
		if ids == nil {
			return nil
		}
		if len(ids)%32 != 0 {
			return fmt.Errorf("index %s: remove file %s: %w: pack list of %d bytes", ix.path, name, ErrCorrupt, len(ids))
		}
		ids = append([]byte(nil), ids...)
		dropped, err := unlistPacks(tx.Bucket(bucketPacks), name, ids)
		if err != nil {
			return fmt.Errorf("index %s: remove file %s: %w", ix.path, name, err)
		}
		if err := dropSpaceLocations(tx, dropped); err != nil {
			return fmt.Errorf("index %s: remove file %s: %w", ix.path, name, err)
		}
		return files.Delete([]byte(name))
	})
}

// RemoveFiles is RemoveFile of several files in one transaction, which
// scans the bucket of each space a dropped pack belonged to once (prune's
// exclusive section removes every obsolete index file at once).
func (ix *Index) RemoveFiles(names []string) error {
	if len(names) == 0 {
		return nil
	}
	return ix.update(func(tx *bolt.Tx) error {
		files := tx.Bucket(bucketFiles)
		all := map[string]map[[32]byte]bool{}
		for _, name := range names {
			ids := files.Get([]byte(name))
			if ids == nil {
				continue
			}
			if len(ids)%32 != 0 {
				return fmt.Errorf("index %s: remove file %s: %w: pack list of %d bytes", ix.path, name, ErrCorrupt, len(ids))
			}
			ids = append([]byte(nil), ids...)
			dropped, err := unlistPacks(tx.Bucket(bucketPacks), name, ids)
			if err != nil {
				return fmt.Errorf("index %s: remove file %s: %w", ix.path, name, err)
			}
			for sp, set := range dropped {
				if all[sp] == nil {
					all[sp] = map[[32]byte]bool{}
				}
				for id := range set {
					all[sp][id] = true
				}
			}
			if err := files.Delete([]byte(name)); err != nil {
				return err
			}
		}
		if err := dropSpaceLocations(tx, all); err != nil {
			return fmt.Errorf("index %s: remove files: %w", ix.path, err)
		}
		return nil
	})
}

// unlistPacks removes file from the pack records and returns, per space, the
// packs no loaded file lists any more (their records deleted).
func unlistPacks(b *bolt.Bucket, file string, ids []byte) (map[string]map[[32]byte]bool, error) {
	dropped := map[string]map[[32]byte]bool{}
	for i := 0; i < len(ids); i += 32 {
		id := ids[i : i+32]
		rec := b.Get(id)
		if rec == nil {
			continue
		}
		s, err := decodePack(id, rec)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		s.Files = slices.DeleteFunc(s.Files, func(f string) bool { return f == file })
		if len(s.Files) > 0 {
			if err := b.Put(id, encodePack(s)); err != nil {
				return nil, err
			}
			continue
		}
		if err := b.Delete(id); err != nil {
			return nil, err
		}
		if dropped[s.Space] == nil {
			dropped[s.Space] = map[[32]byte]bool{}
		}
		dropped[s.Space][s.ID] = true
	}
	return dropped, nil
}

// dropLocations removes every location in one of the packs from b. Changes
// are collected first and applied after the scan: deleting under a bbolt
// cursor can skip the next key.
func dropLocations(b *bolt.Bucket, packs map[[32]byte]bool) error {
	type change struct{ key, val []byte } // val nil: delete
	var changes []change
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := checkLocations(v); err != nil {
			return fmt.Errorf("%w: blob %x: %w", ErrCorrupt, k, err)
		}
		var keep []byte
		removed := false
		for i := 0; i < len(v); i += LocationSize {
			var pack [32]byte
			copy(pack[:], v[i:i+32])
			if packs[pack] {
				removed = true
				continue
			}
			keep = append(keep, v[i:i+LocationSize]...)
		}
		if removed {
			changes = append(changes, change{key: append([]byte(nil), k...), val: keep})
		}
	}
	deleted := uint64(0)
	for _, ch := range changes {
		var err error
		if ch.val == nil {
			err = b.Delete(ch.key)
			deleted++
		} else {
			err = b.Put(ch.key, ch.val)
		}
		if err != nil {
			return err
		}
	}
	return b.SetSequence(b.Sequence() - min(deleted, b.Sequence()))
}
