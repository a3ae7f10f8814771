package index

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"memento/chunk"
)

// LoadedFiles returns the names of the repository index files the cache
// holds locations of: true for the ones merged completely, false for the
// ones a batched merge (AddFiles) began but did not finish (a process that
// died between its transactions). The caller merges every name not true
// (AddFile) before a backup, and treats every name in the map, true or
// false, as one whose packs the cache may place blobs in: when such a file
// is gone from the repository the cache must be reset.
func (ix *Index) LoadedFiles() (map[string]bool, error) {
	out := map[string]bool{}
	err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiles).ForEach(func(k, _ []byte) error {
			if name, ok := strings.CutSuffix(string(k), mergingSuffix); ok {
				if _, seen := out[name]; !seen { // a merged entry of the name (true) wins
					out[name] = false
				}
				return nil
			}
			out[string(k)] = true
			return nil
		})
	})
	return out, err
}

// mergingSuffix marks, in the files bucket, an index file whose merge is
// under way: AddFiles records name+mergingSuffix (with the file's pack IDs,
// as for a merged file) in the transaction of its first blob locations and
// replaces it with name in the transaction of its last. A process that dies
// between the two leaves the marker, so the cache never holds a location
// without a files entry naming where it came from: the file is merged again
// if the repository still lists it, and the cache is reset if not (a prune
// deleted it and maybe its packs). A memento without batched merges reads
// the marker as the name of an index file that is gone (an index/ name) and
// resets the cache, or, for rebuild@ names, lets prune remove it: both safe.
const mergingSuffix = ".merging"

// mergeBatchDefault bounds the blob locations one transaction of AddFiles
// puts. Each transaction holds every page and node it touches until its
// commit: one transaction for 490,000 blobs (the first backup of 460,000
// small files) held 162 MB (docs/benchmarks.md, "Issue 18, session 23").
// The locations are put in ascending key order across all the files of a
// merge, so a transaction touches only the leaves of its key range: into an
// empty cache it appends at the right edge of the B+tree, into a full one
// it rewrites 1/n of it; either way O(batch), never the whole tree.
const mergeBatchDefault = 50_000

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
// lists) and marks name as loaded. Merging a name that is already loaded is
// a no-op, since repository files are immutable. A blob already known at
// another location keeps both (it is in two packs when two backups stored
// it at once); Lookup returns the first one.
func (ix *Index) AddFile(name string, packs []PackInfo) error {
	return ix.AddFiles([]File{{Name: name, Packs: packs}})
}

// mergeRef is one blob location of a merge: the blob packs[pack].Blobs[blob]
// of the merge's pack list, with its ID's first 8 bytes to sort by (16 bytes
// a blob, against 80 for a blobPut: the merge keeps one for every blob until
// its last transaction).
type mergeRef struct {
	prefix     uint64
	pack, blob uint32
}

// AddFiles is AddFile for many index files at once, for a rebuild or a
// first load. Up to mergeBatch blob locations it is one transaction: either
// all of the files are merged or, on error, none. A larger merge is several
// transactions on one open of the file, each putting the next mergeBatch
// locations in key order (all the files' blobs sorted together, space by
// space); the files are marked merging (mergingSuffix) in the first and
// loaded in the last. An error or a crash in between leaves the locations
// of the committed transactions, all of them real blobs of the files, and
// the markers, which LoadedFiles reports.
func (ix *Index) AddFiles(files []File) error {
	for _, f := range files {
		if f.Name == "" || len(f.Name)+len(mergingSuffix) > bolt.MaxKeySize || strings.HasSuffix(f.Name, mergingSuffix) {
			return fmt.Errorf("index %s: add file: invalid name %q", ix.path, f.Name)
		}
		for i := range f.Packs {
			if err := f.Packs[i].validate(); err != nil {
				return fmt.Errorf("index %s: add file %s: pack %x: %w", ix.path, f.Name, f.Packs[i].ID, err)
			}
		}
	}
	batch := ix.mergeBatch
	if batch <= 0 {
		batch = mergeBatchDefault
	}
	var (
		todo    []File              // the files not loaded yet
		packs   []*PackInfo         // their packs; a mergeRef's pack indexes it
		spaces  []string            // the spaces of their blobs, sorted
		bySpace [][]mergeRef        // per space, its locations in key order
		next    struct{ sp, i int } // the first location not put yet
		txs     int                 // transactions committed
	)
	// plan picks the files to merge and sorts their locations; it runs in
	// the first transaction, which sees which files are loaded.
	plan := func(filesB *bolt.Bucket) error {
		seen := map[string]bool{}
		counts := map[string]int{}
		for _, f := range files {
			if seen[f.Name] || filesB.Get([]byte(f.Name)) != nil {
				continue // loaded before, or earlier in this batch
			}
			seen[f.Name] = true
			todo = append(todo, f)
			for i := range f.Packs {
				packs = append(packs, &f.Packs[i])
				counts[f.Packs[i].Space] += len(f.Packs[i].Blobs)
			}
		}
		if len(packs) > math.MaxUint32 {
			return fmt.Errorf("%d packs in one merge", len(packs))
		}
		spaces = slices.Sorted(maps.Keys(counts))
		bySpace = make([][]mergeRef, len(spaces))
		slot := make(map[string]int, len(spaces))
		for i, sp := range spaces {
			slot[sp] = i
			bySpace[i] = make([]mergeRef, 0, counts[sp])
		}
		for pi, p := range packs {
			refs := bySpace[slot[p.Space]]
			for bi := range p.Blobs {
				refs = append(refs, mergeRef{prefix: binary.BigEndian.Uint64(p.Blobs[bi].ID[:8]), pack: uint32(pi), blob: uint32(bi)})
			}
			bySpace[slot[p.Space]] = refs
		}
		// bbolt inserts sorted keys into neighbouring pages: far fewer page
		// splits and copies than random order, and each transaction's key
		// range is its own.
		for _, refs := range bySpace {
			slices.SortFunc(refs, func(a, b mergeRef) int {
				if c := cmp.Compare(a.prefix, b.prefix); c != 0 {
					return c
				}
				if c := bytes.Compare(packs[a.pack].Blobs[a.blob].ID[:], packs[b.pack].Blobs[b.blob].ID[:]); c != 0 {
					return c
				}
				if c := cmp.Compare(a.pack, b.pack); c != 0 {
					return c
				}
				return cmp.Compare(a.blob, b.blob)
			})
		}
		return nil
	}
	err := ix.updates(func(tx *bolt.Tx) (bool, error) {
		filesB := tx.Bucket(bucketFiles)
		first := txs == 0
		if first {
			if err := plan(filesB); err != nil {
				return false, fmt.Errorf("index %s: add files: %w", ix.path, err)
			}
			packsB := tx.Bucket(bucketPacks)
			for _, f := range todo {
				if err := putPacks(packsB, f.Name, f.Packs); err != nil {
					return false, fmt.Errorf("index %s: add file %s: %w", ix.path, f.Name, err)
				}
			}
		}
		// This transaction's locations: the next batch, space by space.
		left := batch
		for left > 0 && next.sp < len(spaces) {
			refs := bySpace[next.sp]
			n := min(left, len(refs)-next.i)
			var prev *mergeRef
			if next.i > 0 {
				prev = &refs[next.i-1]
			}
			if err := putRefs(tx, spaces[next.sp], packs, refs[next.i:next.i+n], prev); err != nil {
				return false, fmt.Errorf("index %s: %w", ix.path, err)
			}
			left -= n
			next.i += n
			if next.i == len(refs) {
				bySpace[next.sp] = nil
				next.sp, next.i = next.sp+1, 0
			}
		}
		done := next.sp == len(spaces)
		switch {
		case first && !done:
			for _, f := range todo {
				if err := filesB.Put([]byte(f.Name+mergingSuffix), packIDs(f.Packs)); err != nil {
					return false, fmt.Errorf("index %s: add file %s: %w", ix.path, f.Name, err)
				}
			}
		case done:
			for _, f := range todo {
				if err := filesB.Put([]byte(f.Name), packIDs(f.Packs)); err != nil {
					return false, fmt.Errorf("index %s: add file %s: %w", ix.path, f.Name, err)
				}
				// Ours, or one a merge cut off before left.
				if err := filesB.Delete([]byte(f.Name + mergingSuffix)); err != nil {
					return false, fmt.Errorf("index %s: add file %s: %w", ix.path, f.Name, err)
				}
			}
		}
		return done, nil
	}, func() error {
		txs++
		if ix.mergeStop != nil {
			return ix.mergeStop(txs)
		}
		return nil
	})
	return err
}

// packIDs is the files bucket's value for an index file listing packs.
func packIDs(packs []PackInfo) []byte {
	out := make([]byte, 0, 32*len(packs))
	for _, p := range packs {
		out = append(out, p.ID[:]...)
	}
	return out
}

// putRefs puts refs, sorted, into space's bucket (created if missing) and
// counts the new keys in its sequence. prev, if not nil, is the location put
// just before refs[0]: a blob listed twice at one location is put once.
func putRefs(tx *bolt.Tx, space string, packs []*PackInfo, refs []mergeRef, prev *mergeRef) error {
	b, err := tx.Bucket(bucketSpaces).CreateBucketIfNotExists([]byte(space))
	if err != nil {
		return fmt.Errorf("space %q: %w", space, err)
	}
	put := func(r mergeRef) blobPut {
		p := packs[r.pack]
		bl := &p.Blobs[r.blob]
		return blobPut{id: bl.ID, loc: Location{
			Pack: p.ID, Offset: bl.Offset, Length: bl.Length, RawLength: bl.RawLength, Type: bl.Type, Flags: bl.Flags,
		}}
	}
	puts := make([]blobPut, 0, len(refs)+1)
	if prev != nil {
		puts = append(puts, put(*prev))
	}
	for _, r := range refs {
		puts = append(puts, put(r))
	}
	added, err := putBlobs(b, puts, prev != nil)
	if err != nil {
		return fmt.Errorf("space %q: %w", space, err)
	}
	if err := b.SetSequence(b.Sequence() + uint64(added)); err != nil {
		return fmt.Errorf("space %q: %w", space, err)
	}
	return nil
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
// With skipFirst, puts[0] was put by the transaction before and only serves
// to skip a duplicate of it.
func putBlobs(b *bolt.Bucket, puts []blobPut, skipFirst bool) (added int, err error) {
	arena := make([]byte, 0, len(puts)*LocationSize)
	for i := range puts {
		p := &puts[i]
		if (i == 0 && skipFirst) || (i > 0 && *p == puts[i-1]) {
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
		ids, err := takeFile(files, name)
		if err != nil {
			return fmt.Errorf("index %s: %w", ix.path, err)
		}
		if ids == nil {
			return nil
		}
		dropped, err := unlistPacks(tx.Bucket(bucketPacks), name, ids)
		if err != nil {
			return fmt.Errorf("index %s: remove file %s: %w", ix.path, name, err)
		}
		if err := dropSpaceLocations(tx, dropped); err != nil {
			return fmt.Errorf("index %s: remove file %s: %w", ix.path, name, err)
		}
		return nil
	})
}

// takeFile deletes name's entry from the files bucket, and its merging
// marker (a merge that did not finish), and returns the pack IDs they list,
// or nil if there is neither.
func takeFile(files *bolt.Bucket, name string) ([]byte, error) {
	var ids []byte
	for _, key := range []string{name, name + mergingSuffix} {
		v := files.Get([]byte(key))
		if v == nil {
			continue
		}
		if len(v)%32 != 0 {
			return nil, fmt.Errorf("remove file %s: %w: pack list of %d bytes", name, ErrCorrupt, len(v))
		}
		ids = append(ids, v...) // a pack listed twice is unlisted once, then skipped
		if err := files.Delete([]byte(key)); err != nil {
			return nil, fmt.Errorf("remove file %s: %w", name, err)
		}
	}
	return ids, nil
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
			ids, err := takeFile(files, name)
			if err != nil {
				return fmt.Errorf("index %s: %w", ix.path, err)
			}
			if ids == nil {
				continue
			}
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
