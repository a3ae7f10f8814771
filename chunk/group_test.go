package chunk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestCompressGroup: a group of text files is stored as one zstd frame
// (form 0x01) that decompresses to it; a
// group of random bytes, or any group of a pipeline at LevelNone, is
// stored raw.
func TestCompressGroup(t *testing.T) {
	var text []byte
	for i := range 3000 {
		text = fmt.Appendf(text, "func f%d(x int) error { return fmt.Errorf(\"step %d: %%w\", x) }\n", i, i*7)
	}
	random := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	p := NewPipeline(1, LevelDefault)
	defer p.Close()
	stored, ok := p.CompressGroup(nil, text)
	if !ok || stored[0] != formatZstd {
		t.Fatalf("text group: compressed %v, form %#x", ok, stored[0])
	}
	back, err := Decompress(nil, stored)
	if err != nil || !bytes.Equal(back, text) {
		t.Fatalf("text group: decompressed %d bytes, %v", len(back), err)
	}
	if len(stored)*4 > len(text) {
		t.Fatalf("text group: %d bytes stored of %d", len(stored), len(text))
	}
	if out, ok := p.CompressGroup(nil, random); ok || !bytes.Equal(out, random) {
		t.Fatalf("random group: compressed %v", ok)
	}
	none := NewPipeline(1, LevelNone)
	defer none.Close()
	if out, ok := none.CompressGroup(nil, text); ok || !bytes.Equal(out, text) {
		t.Fatalf("LevelNone: compressed %v", ok)
	}
}
