package chunk

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestUnshuffle4Fast checks the SIMD unshuffle against the
// byte-by-byte reference at every length around its 64-byte step, and that
// it inverts shuffle4.
func TestUnshuffle4Fast(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 4096, 4099, 16 << 10, 1<<20 + 7} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		sh := make([]byte, n)
		shuffle4(sh, src)
		want := make([]byte, n)
		unshuffle4(want, sh)
		got := make([]byte, n)
		unshuffle4Fast(got, sh)
		if !bytes.Equal(got, want) {
			t.Fatalf("len %d: unshuffle4Fast differs from unshuffle4", n)
		}
		if !bytes.Equal(got, src) {
			t.Fatalf("len %d: unshuffle4Fast(shuffle4(x)) != x", n)
		}
	}
	// A fixed case, readable by eye: planes 0..3 of three words plus one trailing byte.
	got := make([]byte, 13)
	unshuffle4Fast(got, []byte{0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23, 99})
	if want := []byte{0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 99}; !bytes.Equal(got, want) {
		t.Fatalf("unshuffle4Fast = %v, want %v", got, want)
	}
}

// FuzzUnshuffle4Fast: on any input the fast unshuffle equals the reference.
func FuzzUnshuffle4Fast(f *testing.F) {
	f.Add([]byte{0, 10, 20, 1, 11, 21, 2, 12, 22, 3, 13, 23, 99})
	f.Add(bytes.Repeat([]byte{7, 200}, 40))
	f.Fuzz(func(t *testing.T, sh []byte) {
		want := make([]byte, len(sh))
		unshuffle4(want, sh)
		got := make([]byte, len(sh))
		unshuffle4Fast(got, sh)
		if !bytes.Equal(got, want) {
			t.Fatalf("len %d: unshuffle4Fast differs from unshuffle4", len(sh))
		}
	})
}

// BenchmarkUnshuffle4 compares the byte-by-byte and SIMD
// unshuffles on a 1 MiB chunk (the embeddings' chunk size).
func BenchmarkUnshuffle4(b *testing.B) {
	src := make([]byte, 1<<20)
	for i := range src {
		src[i] = byte(i * 7)
	}
	dst := make([]byte, len(src))
	for _, c := range []struct {
		name string
		fn   func(dst, src []byte)
	}{{"bytes", unshuffle4}, {"simd", unshuffle4Fast}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				c.fn(dst, src)
			}
		})
	}
}

// unshuffle4Fast is unshufflePlanes of one contiguous shuffled buffer.
func unshuffle4Fast(dst, src []byte) { unshufflePlanes(dst, planes(src)) }
