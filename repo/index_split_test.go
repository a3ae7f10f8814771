package repo

import (
	"context"
	"encoding/binary"
	"testing"

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
