package index

import (
	"testing"

	"memento/chunk"
)

// DropPacks forgets a lost pack's blobs, keeps a blob that has a second
// copy elsewhere (at that copy), and leaves other packs alone.
func TestDropPacks(t *testing.T) {
	ix := openTemp(t)
	packs := makePacks("s", 1, 3, 4)
	copyOf := PackInfo{ID: blobID(99, 0), Space: "s", Size: 4000, Blobs: []BlobInfo{packs[0].Blobs[0]}}
	if err := ix.AddFile("index/a", packs); err != nil {
		t.Fatal(err)
	}
	if err := ix.AddFile("index/b", []PackInfo{copyOf}); err != nil {
		t.Fatal(err)
	}
	if err := ix.DropPacks([][32]byte{packs[0].ID, blobID(7, 7)}); err != nil {
		t.Fatal(err)
	}
	known, err := ix.SpaceIDs("s")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range packs[0].Blobs {
		if _, ok := known[b.ID]; ok != (i == 0) {
			t.Fatalf("blob %d of the dropped pack known=%v", i, ok)
		}
	}
	if len(known) != 1+2*4 {
		t.Fatalf("%d blobs known, want 9", len(known))
	}
	locs, err := ix.Lookup("s", []chunk.ID{packs[0].Blobs[0].ID})
	if err != nil || locs[packs[0].Blobs[0].ID].Pack != copyOf.ID {
		t.Fatalf("surviving copy: %v %v", locs, err)
	}
	ps, err := ix.Packs()
	if err != nil || len(ps) != 3 {
		t.Fatalf("packs after drop: %d, %v", len(ps), err)
	}
	if n, _ := ix.BlobCount("s"); n != 9 {
		t.Fatalf("blob count %d, want 9", n)
	}
}
