package chunk

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// randBytes is n bytes of a seeded PCG stream: incompressible.
func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// shiftedRepeats is n bytes of u-dup's repeated.bin shape
// (scripts/bench/unseen-data.sh): a block of blockLen random bytes
// repeated, each copy after 1-61 bytes of another random stream.
func shiftedRepeats(n, blockLen int, seed uint64) []byte {
	block := randBytes(blockLen, seed)
	other := randBytes(64, seed+1)
	b := make([]byte, 0, n+blockLen+64)
	for i := 0; len(b) < n; i++ {
		b = append(b, other[:i%61+1]...)
		b = append(b, block...)
	}
	return b[:n]
}

// TestLongRepeatsCompressed: a chunk of a random block repeated at a
// distance beyond the probe's 16 KiB samples (u-dup's repeated.bin) is
// compressed whole, as the 0x01 frame of the chunk at the file's level,
// where it was stored raw because no sample compresses; a random chunk,
// and one whose samples are copies of nothing else in it, are stored raw
// by the probe's decision (samplePays false: no full compression tried).
func TestLongRepeatsCompressed(t *testing.T) {
	for _, tc := range []struct{ n, block int }{
		{1 << 20, 64 << 10},
		{4*probeWindow + 100, 20 << 10},
		{3 << 20, 64 << 10},
		{8 << 20, 1 << 20},
		{2 << 20, 700 << 10},
	} {
		src := shiftedRepeats(tc.n, tc.block, uint64(tc.n))
		for q := 1; q <= 3; q++ {
			off := ((len(src) - probeWindow) * q / 4) &^ 3
			s := src[off : off+probeWindow]
			if samplePaysOff(len(s), len(encoder(LevelBalanced).EncodeAll(s, nil))) {
				t.Fatalf("%+v: sample %d compresses: the test proves nothing", tc, q)
			}
		}
		if !samplePays(src, LevelBalanced) {
			t.Errorf("%+v: samplePays false, want true (long repeats)", tc)
		}
		stored, compressed := CompressFile(nil, src, "images/disk.img", LevelDefault)
		want := encoder(LevelBalanced).EncodeAll(src, []byte{formatZstd})
		if !compressed || !bytes.Equal(stored, want) {
			t.Errorf("%+v: compressed %v, %d bytes, want the 0x01 frame of %d bytes", tc, compressed, len(stored), len(want))
		}
		if !compressed {
			continue
		}
		if got, err := Decompress(nil, stored); err != nil || !bytes.Equal(got, src) {
			t.Errorf("%+v: decompress: %v", tc, err)
		}
	}
	for _, n := range []int{4 * probeWindow, 1 << 20, 8 << 20} {
		src := randBytes(n, uint64(n)+99)
		// A 32-byte string shared by every site and a few other places: too
		// few hits to be a repeat.
		key := randBytes(32, 5)
		for q := 1; q <= 3; q++ {
			copy(src[((n-probeWindow)*q/4+probeWindow/2)&^3:], key)
		}
		for i := 1; i <= 4; i++ {
			copy(src[i*n/6+13:], key)
		}
		if longRepeats(src) || samplePays(src, LevelBalanced) {
			t.Errorf("random %d bytes: longRepeats %v, samplePays %v, want false (stored raw without a full compression)", n, longRepeats(src), samplePays(src, LevelBalanced))
		}
		if stored, compressed := CompressFile(nil, src, "images/disk.img", LevelDefault); compressed || !bytes.Equal(stored, src) {
			t.Errorf("random %d bytes: compressed %v, want stored raw", n, compressed)
		}
	}
}

func BenchmarkProbeRandom(b *testing.B) {
	src := randBytes(1<<20, 3)
	b.Run("samples", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			for _, q := range [...]int{2, 1, 3} {
				off := ((len(src) - probeWindow) * q / 4) &^ 3
				encoder(LevelBalanced).EncodeAll(src[off:off+probeWindow], nil)
			}
		}
	})
	b.Run("longRepeats", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			longRepeats(src)
		}
	})
	b.Run("fullFastest", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		out := make([]byte, 0, 2<<20)
		for b.Loop() {
			encoder(LevelFastest).EncodeAll(src, out[:0])
		}
	})
	b.Run("fullBalanced", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		out := make([]byte, 0, 2<<20)
		for b.Loop() {
			encoder(LevelBalanced).EncodeAll(src, out[:0])
		}
	})
}
