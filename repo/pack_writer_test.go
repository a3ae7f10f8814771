package repo

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"memento/index"
)

// TestPackerManySmallBlobs: a pack of thousands of tiny blobs (a source
// tree's files) is closed before its header outgrows the room its buffer
// keeps for it, so no written pack is larger than target + reserve (one
// was, by the size of the header, after the whole pack buffer had been
// reallocated and copied to append it), and every blob reads back.
func TestPackerManySmallBlobs(t *testing.T) {
	const target = 1 << 20
	tr := newTestRepo(t, InitOptions{PackSize: target})
	ctx := context.Background()
	p := tr.NewPacker(ctx, "")
	// 500-byte blobs fill the 1 MiB target with ~1,900 of them, whose
	// 42-byte header entries take ~80 KB, beyond the 68 KiB reserve.
	const n = 6000
	data, packs := addSmallBlobs(t, tr, p, n)
	if len(packs) < 3 {
		t.Fatalf("%d packs for %d blobs, want several (the header of one would not fit)", len(packs), n)
	}
	blobs := 0
	for _, pk := range packs {
		blobs += len(pk.Blobs)
		if limit := int64(target + packHeaderReserve(target)); pk.Size > limit {
			t.Fatalf("pack %x of %d blobs is %d bytes, above target + reserve %d", pk.ID[:4], len(pk.Blobs), pk.Size, limit)
		}
	}
	if blobs != n {
		t.Fatalf("packs hold %d blobs, want %d", blobs, n)
	}
	if err := tr.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	i := 0
	for id, want := range data {
		if i++; i%500 != 0 {
			continue
		}
		got, err := tr.ReadBlob(ctx, "", DataBlob, id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("blob %x reads %q, want %q", id[:4], got, want)
		}
	}
}

// addSmallBlobs adds n distinct 500-byte data blobs (a source tree's small
// files) to p and flushes it; it returns the blobs by ID and the packs.
func addSmallBlobs(t *testing.T, tr *testRepo, p *Packer, n int) (map[[32]byte][]byte, []index.PackInfo) {
	t.Helper()
	data := map[[32]byte][]byte{}
	for i := range n {
		d := bytes.Repeat(fmt.Appendf(nil, "small file %d ", i), 50)[:500]
		id := tr.ChunkKey("").Sum(d)
		data[id] = d
		if err := p.Add(DataBlob, id, 0, len(d), d); err != nil {
			t.Fatal(err)
		}
	}
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	return data, packs
}
