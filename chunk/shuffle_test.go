package chunk

import (
	"bytes"
	"encoding/binary"
	"math"
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

// compressShuffledRef is compressShuffled as first written (shuffle4 into a
// temporary buffer, every plane appended from there): the stored form must
// not change when compressShuffled writes leading raw planes in place.
func compressShuffledRef(dst, src []byte, l Level, ent [4]float64) []byte {
	return compressShuffledSections(dst, src, ent, formatShuffle4Huff, planeHuff, func(dst, plane []byte) []byte {
		h := appendHuffBlocks(nil, plane)
		if z := encoder(l).EncodeAll(plane, nil); len(plane) < huffBlockSize && len(z) < len(h) {
			dst[len(dst)-6] = planeZstd
			return append(dst, z...)
		}
		return append(dst, h...)
	})
}

// compressShuffledZstd is the writer of formatZstdShuffle4 (before issue
// 18's third round), whose stored forms repositories hold and Decompress
// still reads.
func compressShuffledZstd(dst, src []byte, l Level, ent [4]float64) []byte {
	return compressShuffledSections(dst, src, ent, formatZstdShuffle4, planeZstd, func(dst, plane []byte) []byte {
		return encoder(l).EncodeAll(plane, dst)
	})
}

func compressShuffledSections(dst, src []byte, ent [4]float64, format, kind byte, code func(dst, plane []byte) []byte) []byte {
	sh := make([]byte, len(src))
	shuffle4(sh, src)
	dst = append(dst, format)
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	for k, plane := range planes(sh) {
		if ent[k] >= randomPlaneEntropy {
			dst = appendSection(dst, planeRaw, plane)
			continue
		}
		hdr := len(dst)
		dst = append(dst, kind, 0, 0, 0, 0, 0)
		dst = code(dst, plane)
		n := len(dst) - hdr - 6
		if !pays(len(plane), n) {
			dst = appendSection(dst[:hdr], planeRaw, plane)
			continue
		}
		putUvarint5(dst[hdr+1:hdr+6], uint64(n))
	}
	return dst
}

// TestCompressShuffledStoredForm: compressShuffled gives byte for byte the
// reference's stored form, for every pattern of raw and compressed planes
// and lengths around the SIMD step, into buffers with and without room, and
// the stored form decompresses to the input.
func TestCompressShuffledStoredForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	r, c := randomPlaneEntropy, 0.0
	ents := [][4]float64{{r, r, c, c}, {c, c, c, c}, {r, r, r, r}, {r, c, r, c}, {c, r, r, c}, {r, r, r, c}}
	for _, n := range []int{64, 65, 67, 1000, 4099, 1<<20 + 3} {
		src := make([]byte, n)
		for i := 0; i+4 <= n; i += 4 {
			f := math.Float32bits(float32(rng.NormFloat64() * 0.05))
			binary.LittleEndian.PutUint32(src[i:], f)
		}
		for _, ent := range ents {
			want := compressShuffledRef(nil, src, LevelDefault, ent)
			for _, room := range []int{0, n + 100} {
				got := compressShuffled(make([]byte, 0, room), src, LevelDefault, ent, true, nil)
				if !bytes.Equal(got, want) {
					t.Fatalf("len %d, entropies %v, room %d: stored form differs from the reference", n, ent, room)
				}
			}
			plain, err := Decompress(nil, want)
			if err != nil || !bytes.Equal(plain, src) {
				t.Fatalf("len %d, entropies %v: decompress: %v", n, ent, err)
			}
			// Without huff (repositories before format 3) the writer
			// stores form 0x02 exactly as the writer before 0x03 did.
			old := compressShuffled(nil, src, LevelDefault, ent, false, nil)
			if ref := compressShuffledZstd(nil, src, LevelDefault, ent); !bytes.Equal(old, ref) {
				t.Fatalf("len %d, entropies %v: form 0x02 differs from the old writer's", n, ent)
			}
			if plain, err := Decompress(nil, old); err != nil || !bytes.Equal(plain, src) {
				t.Fatalf("len %d, entropies %v: decompress 0x02: %v", n, ent, err)
			}
		}
	}
}
