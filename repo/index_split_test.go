package repo

import (
	"context"
	"encoding/binary"
	"testing"

	bolt "go.etcd.io/bbolt"

	"memento/chunk"
	"memento/index"
)

// TestSaveIndexSplitsLargeBackups: the packs of one backup that list more
// than indexBatchBlobs blobs go to several index files, each at most
// indexBatchBlobs blobs (packs whole, in order), all merged into the local
// cache, and a new cache loads them all again. One file for the whole
// backup was built in memory at once, and past MaxMetadataFile no reader
// would open it.
func TestSaveIndexSplitsLargeBackups(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	space := StorageSpace("")
	mk := func(seed byte, n int) index.PackInfo {
		p := index.PackInfo{Space: space, Size: int64(n) * 100}
		p.ID[0], p.ID[1] = 0xfe, seed
		for i := range n {
			var id chunk.ID
			id[0] = seed
			binary.BigEndian.PutUint32(id[1:], uint32(i))
			p.Blobs = append(p.Blobs, index.BlobInfo{ID: id, Offset: uint32(i) * 100, Length: 100, RawLength: 300})
		}
		return p
	}
	packs := []index.PackInfo{mk(1, 60_000), mk(2, 40_000), mk(3, 30_000), mk(4, 1)}
	if err := tr.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := tr.be.List(ctx, DirIndex, func(name string, _ int64) error {
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	files, damaged, err := tr.LoadIndexFiles(ctx, names, false)
	if err != nil || len(damaged) > 0 {
		t.Fatal(err, damaged)
	}
	counts := map[int]bool{}
	for _, f := range files {
		n := 0
		for _, p := range f.Packs {
			n += len(p.Blobs)
		}
		counts[n] = true
	}
	if len(files) != 2 || !counts[100_000] || !counts[30_001] {
		t.Fatalf("%d index files with %v blobs, want 2: 100000 (packs 1, 2) and 30001 (packs 3, 4)", len(files), counts)
	}
	loaded, err := tr.Index().LoadedFiles()
	if err != nil || len(loaded) != 2 {
		t.Fatalf("local cache merged %v (%v), want both files", loaded, err)
	}
	r2, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if n, err := r2.Index().BlobCount(space); err != nil || n != 130_001 {
		t.Fatalf("a new cache holds %d blobs (%v), want 130001", n, err)
	}
}

// TestSyncAfterCutOffMerge: a batched merge cut off by a crash leaves its
// index file marked "merging" in the cache (index.AddFiles), with some of
// its locations. The next Open completes the merge when the repository
// still lists the file, and resets the cache when a prune deleted it: the
// cache must never place a blob in a pack whose index file is gone.
func TestSyncAfterCutOffMerge(t *testing.T) {
	for _, gone := range []bool{false, true} {
		t.Run(map[bool]string{false: "file listed", true: "file gone"}[gone], func(t *testing.T) {
			ctx := context.Background()
			tr := newTestRepo(t, InitOptions{})
			space := StorageSpace("")
			mk := func(seed byte) index.PackInfo {
				p := index.PackInfo{Space: space, Size: 1000}
				p.ID[0], p.ID[1] = 0xfd, seed
				for i := range 10 {
					var id chunk.ID
					id[0], id[1] = seed, byte(i)
					p.Blobs = append(p.Blobs, index.BlobInfo{ID: id, Offset: uint32(i) * 100, Length: 100, RawLength: 300})
				}
				return p
			}
			a, b := mk(1), mk(2)
			for _, p := range []index.PackInfo{a, b} {
				if err := tr.SaveIndex(ctx, []index.PackInfo{p}); err != nil {
					t.Fatal(err)
				}
			}
			// Find a's file and turn its entry into the marker a cut-off
			// merge leaves.
			path := tr.Index().Path()
			var nameA string
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				files := tx.Bucket([]byte("files"))
				return files.ForEach(func(k, v []byte) error {
					if string(v) == string(a.ID[:]) {
						nameA = string(k)
					}
					return nil
				})
			})
			if err == nil && nameA != "" {
				err = db.Update(func(tx *bolt.Tx) error {
					files := tx.Bucket([]byte("files"))
					if err := files.Put([]byte(nameA+".merging"), a.ID[:]); err != nil {
						return err
					}
					return files.Delete([]byte(nameA))
				})
			}
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil || nameA == "" {
				t.Fatalf("marking %q merging: %v", nameA, err)
			}
			loaded, err := tr.Index().LoadedFiles()
			if err != nil || len(loaded) != 2 || loaded[nameA] {
				t.Fatalf("LoadedFiles = %v, %v; want %s not loaded and one other file", loaded, err, nameA)
			}
			if gone {
				if err := tr.be.Delete(ctx, nameA); err != nil {
					t.Fatal(err)
				}
			}
			r2, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: tr.cache})
			if err != nil {
				t.Fatal(err)
			}
			defer r2.Close()
			loaded, err = r2.Index().LoadedFiles()
			if err != nil {
				t.Fatal(err)
			}
			want := map[chunk.ID]bool{}
			for _, bl := range b.Blobs {
				want[bl.ID] = true
			}
			if !gone {
				for _, bl := range a.Blobs {
					want[bl.ID] = true
				}
			}
			if len(loaded) != map[bool]int{false: 2, true: 1}[gone] || loaded[nameA] == gone {
				t.Fatalf("after Open: LoadedFiles = %v (%s gone: %v)", loaded, nameA, gone)
			}
			db, err = bolt.Open(r2.Index().Path(), 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			err = db.View(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("files")).ForEach(func(k, _ []byte) error {
					keys = append(keys, string(k))
					return nil
				})
			})
			db.Close()
			if err != nil || len(keys) != len(loaded) {
				t.Fatalf("files in the cache after Open: %q (%v), want %d and no marker", keys, err, len(loaded))
			}
			for _, p := range []index.PackInfo{a, b} {
				ids := make([]chunk.ID, 0, len(p.Blobs))
				for _, bl := range p.Blobs {
					ids = append(ids, bl.ID)
				}
				got, err := r2.Index().Lookup(space, ids)
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range ids {
					if _, ok := got[id]; ok != want[id] {
						t.Fatalf("blob %s of pack %x: found %v, want %v (%s gone: %v)", id, p.ID[:2], ok, want[id], nameA, gone)
					}
				}
			}
		})
	}
}
