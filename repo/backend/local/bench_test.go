package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

// BenchmarkWrite writes 16 MiB packs (the repository's pack size), fsync and
// all, so the figure is what a backup can push through this backend.
func BenchmarkWrite(b *testing.B) {
	be, err := Create(b.TempDir() + "/repo")
	if err != nil {
		b.Fatal(err)
	}
	data := randBytes(9, 16<<20)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("data/%02x/pack%d", i%256, i)
		if err := be.Write(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenRange reads 64 KiB ranges, the typical blob read of restore.
func BenchmarkOpenRange(b *testing.B) {
	be, err := Create(b.TempDir() + "/repo")
	if err != nil {
		b.Fatal(err)
	}
	data := randBytes(9, 16<<20)
	ctx := context.Background()
	if err := be.Write(ctx, "data/00/pack", bytes.NewReader(data), int64(len(data))); err != nil {
		b.Fatal(err)
	}
	const blob = 64 << 10
	buf := make([]byte, blob)
	b.SetBytes(blob)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		off := int64(i%(len(data)/blob)) * blob
		rc, err := be.Open(ctx, "data/00/pack", off, blob)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rc, buf); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}
