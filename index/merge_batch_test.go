package index

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"memento/chunk"
)

// fileTxid returns the txid of the file's newest meta page: one more for
// every committed read-write transaction.
func fileTxid(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, err0 := parseBoltMeta(b)
	if err0 != nil {
		t.Fatal(err0)
	}
	m1, err1 := parseBoltMeta(b[m0.pageSize:])
	if err1 != nil {
		t.Fatal(err1)
	}
	return max(m0.txid, m1.txid)
}

// filesKeys returns the keys of the files bucket, markers included.
func filesKeys(t *testing.T, ix *Index) []string {
	t.Helper()
	var keys []string
	if err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiles).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// mergeSet is two index files over two spaces: 3,000 + 1,001 blobs.
func mergeSet() []File {
	return []File{
		{Name: "index/a", Packs: append(makePacks("s", 1, 10, 200), makePacks("t", 2, 5, 200)...)},
		{Name: "index/b", Packs: makePacks("s", 3, 7, 143)},
	}
}

// checkAll fails unless every blob of files is found at its location and
// the spaces count exactly their blobs.
func checkAll(t *testing.T, ix *Index, files []File) {
	t.Helper()
	want := map[string]map[chunk.ID]Location{}
	for _, f := range files {
		for _, p := range f.Packs {
			if want[p.Space] == nil {
				want[p.Space] = map[chunk.ID]Location{}
			}
			for _, b := range p.Blobs {
				want[p.Space][b.ID] = locOf(p, b)
			}
		}
	}
	for space, locs := range want {
		got, err := ix.Lookup(space, slices.Collect(maps.Keys(locs)))
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, locs) {
			t.Fatalf("space %s: %d of %d blobs found, or at other locations", space, len(got), len(locs))
		}
		if n, err := ix.BlobCount(space); err != nil || n != len(locs) {
			t.Fatalf("BlobCount(%s) = %d, %v; want %d", space, n, err, len(locs))
		}
	}
}

// A merge larger than mergeBatch commits one transaction per batch of
// locations (one transaction for the whole merge held every page it touched
// until its commit: 162 MB for 490,000 blobs), in key order, and ends with
// every file loaded and no marker left.
func TestAddFilesCommitsInBatches(t *testing.T) {
	ix := openTemp(t)
	ix.mergeBatch = 1000
	files := mergeSet()
	before := fileTxid(t, ix.Path())
	if err := ix.AddFiles(files); err != nil {
		t.Fatal(err)
	}
	if got := fileTxid(t, ix.Path()) - before; got != 5 { // 4,001 locations
		t.Fatalf("merge of 4,001 locations in batches of 1,000: %d transactions, want 5", got)
	}
	checkAll(t, ix, files)
	if keys := filesKeys(t, ix); !slices.Equal(keys, []string{"index/a", "index/b"}) {
		t.Fatalf("files bucket after the merge: %q", keys)
	}
	// A merge that fits one batch is one transaction, as before.
	before = fileTxid(t, ix.Path())
	small := []File{{Name: "index/c", Packs: makePacks("s", 4, 2, 500)}}
	if err := ix.AddFiles(small); err != nil {
		t.Fatal(err)
	}
	if got := fileTxid(t, ix.Path()) - before; got != 1 {
		t.Fatalf("merge of 1,000 locations: %d transactions, want 1", got)
	}
	checkAll(t, ix, append(files, small...))
	// The default batch: 130,001 locations are three transactions.
	ix2 := openTemp(t)
	big := []File{{Name: "index/x", Packs: append(makePacks("s", 5, 13, 10_000), makePacks("s", 6, 1, 1)...)}}
	before = fileTxid(t, ix2.Path())
	if err := ix2.AddFiles(big); err != nil {
		t.Fatal(err)
	}
	if got := fileTxid(t, ix2.Path()) - before; got != 3 {
		t.Fatalf("merge of 130,001 locations: %d transactions, want 3", got)
	}
	checkAll(t, ix2, big)
}

// A merge stopped between its transactions (a process killed there) leaves
// the files marked merging, never loaded; merging them again completes them,
// and removing them drops what was merged.
func TestAddFilesStoppedBetweenBatches(t *testing.T) {
	for _, then := range []string{"merge again", "remove"} {
		t.Run(then, func(t *testing.T) {
			ix := openTemp(t)
			ix.mergeBatch = 1000
			stop := errors.New("killed")
			ix.mergeStop = func(committed int) error {
				if committed == 2 {
					return stop
				}
				return nil
			}
			files := mergeSet()
			if err := ix.AddFiles(files); !errors.Is(err, stop) {
				t.Fatalf("AddFiles = %v, want the stop", err)
			}
			loaded, err := ix.LoadedFiles()
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(loaded, map[string]bool{"index/a": false, "index/b": false}) {
				t.Fatalf("LoadedFiles after a stopped merge = %v, want both files not loaded", loaded)
			}
			if keys := filesKeys(t, ix); !slices.Equal(keys, []string{"index/a.merging", "index/b.merging"}) {
				t.Fatalf("files bucket after a stopped merge: %q", keys)
			}
			// The first 2,000 locations in key order ("s" before "t") are in.
			var ids []chunk.ID
			for _, f := range files {
				for _, p := range f.Packs {
					if p.Space == "s" {
						ids = append(ids, idsOf([]PackInfo{p})...)
					}
				}
			}
			slices.SortFunc(ids, func(a, b chunk.ID) int { return bytes.Compare(a[:], b[:]) })
			got, err := ix.Lookup("s", ids)
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				if _, ok := got[id]; ok != (i < 2000) {
					t.Fatalf("blob %d of %d in key order: found %v", i, len(ids), ok)
				}
			}
			if n, _ := ix.BlobCount("s"); n != 2000 {
				t.Fatalf("BlobCount(s) = %d after 2,000 locations", n)
			}

			ix.mergeStop = nil
			switch then {
			case "merge again":
				if err := ix.AddFiles(files); err != nil {
					t.Fatal(err)
				}
				checkAll(t, ix, files)
				if keys := filesKeys(t, ix); !slices.Equal(keys, []string{"index/a", "index/b"}) {
					t.Fatalf("files bucket after the merge: %q", keys)
				}
			case "remove":
				if err := ix.RemoveFiles([]string{"index/a"}); err != nil {
					t.Fatal(err)
				}
				if err := ix.RemoveFile("index/b"); err != nil {
					t.Fatal(err)
				}
				if keys := filesKeys(t, ix); len(keys) != 0 {
					t.Fatalf("files bucket after removing both: %q", keys)
				}
				if got, _ := ix.Lookup("s", ids); len(got) != 0 {
					t.Fatalf("%d blobs of removed files still found", len(got))
				}
				if packs, _ := ix.Packs(); len(packs) != 0 {
					t.Fatalf("%d packs of removed files still known", len(packs))
				}
				if n, _ := ix.BlobCount("s"); n != 0 {
					t.Fatalf("BlobCount(s) = %d after removing every file", n)
				}
			}
		})
	}
}
