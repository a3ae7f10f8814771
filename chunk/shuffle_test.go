package chunk

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestShuffle4Fast checks the SIMD shuffle against the byte-by-byte
// reference at every length around its 64-byte step, and that unshuffle4
// inverts it.
func TestShuffle4Fast(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 66, 67, 127, 128, 129, 191, 192, 255, 256, 257, 4096, 4099, 16 << 10, 1<<20 + 7} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		want := make([]byte, n)
		shuffle4(want, src)
		got := make([]byte, n)
		shuffle4Fast(got, src)
		if !bytes.Equal(got, want) {
			t.Fatalf("len %d: shuffle4Fast differs from shuffle4", n)
		}
		back := make([]byte, n)
		unshuffle4(back, got)
		if !bytes.Equal(back, src) {
			t.Fatalf("len %d: unshuffle4(shuffle4Fast(x)) != x", n)
		}
	}
	// A fixed case, readable by eye: 16 words 0x0k 0x1k 0x2k 0x3k and one
	// trailing byte; planes are bytes 0, 1, 2, 3 of every word.
	src := make([]byte, 0, 65)
	for k := range 16 {
		src = append(src, byte(k), 0x10|byte(k), 0x20|byte(k), 0x30|byte(k))
	}
	src = append(src, 0xff)
	got := make([]byte, len(src))
	shuffle4Fast(got, src)
	for p := range 4 {
		for k := range 16 {
			if got[16*p+k] != byte(p<<4|k) {
				t.Fatalf("plane %d byte %d = %#x, want %#x (got %x)", p, k, got[16*p+k], p<<4|k, got)
			}
		}
	}
	if got[64] != 0xff {
		t.Fatalf("trailing byte = %#x, want 0xff", got[64])
	}
}

// FuzzShuffle4Fast: on any input the fast shuffle equals the reference.
func FuzzShuffle4Fast(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5}, 30))
	f.Fuzz(func(t *testing.T, src []byte) {
		want := make([]byte, len(src))
		shuffle4(want, src)
		got := make([]byte, len(src))
		shuffle4Fast(got, src)
		if !bytes.Equal(got, want) {
			t.Fatalf("len %d: shuffle4Fast differs from shuffle4", len(src))
		}
	})
}

// BenchmarkShuffle4 compares the byte-by-byte and SIMD shuffles on a 1 MiB
// chunk (the embeddings' chunk size).
func BenchmarkShuffle4(b *testing.B) {
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, len(src))
	for _, c := range []struct {
		name string
		fn   func(dst, src []byte)
	}{{"bytes", shuffle4}, {"simd", shuffle4Fast}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				c.fn(dst, src)
			}
		})
	}
}
