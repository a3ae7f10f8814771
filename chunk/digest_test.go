package chunk

import (
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
)

// b3ExportLengths are the lengths the exported hashes are checked at:
// around the wide threshold, every chunk and group boundary up to 40 KiB,
// and a few large ones.
func b3ExportLengths() []int {
	ls := []int{0, 1, 63, 64, 65, 1023, 1024, 1025}
	for k := 2; k <= 40; k++ {
		ls = append(ls, k<<10-1, k<<10, k<<10+1, k<<10+64)
	}
	return append(ls, 256<<10, 256<<10+1, 1<<20-1, 1<<20+333, 3<<20+17)
}

// TestSum256AndKeySum checks the exported hashes against
// github.com/zeebo/blake3: Sum256, Hasher (written in pieces) and Key.Sum
// (keyed). Where AVX-512 runs, the lengths from b3WideMin on take the
// wide path (TestWidePathTaken).
func TestSum256AndKeySum(t *testing.T) {
	key := DeriveKey([32]byte{1, 2, 3}, "space")
	all := b3TestData(3<<20 + 17)
	var h Hasher
	for _, n := range b3ExportLengths() {
		data := all[:n]
		want := blake3.Sum256(data)
		if got := Sum256(data); got != want {
			t.Fatalf("Sum256 of %d bytes: %x, zeebo %x", n, got, want)
		}
		r := rand.New(rand.NewPCG(uint64(n), 3))
		for p := data; len(p) > 0; {
			m := min(len(p), 1+r.IntN(20<<10))
			if _, err := h.Write(p[:m]); err != nil {
				t.Fatal(err)
			}
			p = p[m:]
		}
		if got := h.Sum256(); got != want {
			t.Fatalf("Hasher of %d bytes: %x, zeebo %x", n, got, want)
		}
		zk, err := blake3.NewKeyed(key.k[:])
		if err != nil {
			t.Fatal(err)
		}
		_, _ = zk.Write(data)
		var wantID ID
		zk.Sum(wantID[:0])
		if got := key.Sum(data); got != wantID {
			t.Fatalf("Key.Sum of %d bytes: %s, zeebo %s", n, got, wantID)
		}
	}
	// Reset in the middle of a stream: the next stream starts afresh.
	_, _ = h.Write(all[:70<<10])
	h.Reset()
	_, _ = h.Write(all[:5000])
	if got, want := h.Sum256(), blake3.Sum256(all[:5000]); got != want {
		t.Fatalf("Hasher after Reset: %x, zeebo %x", got, want)
	}
}

// TestWidePathTaken checks that the exported hashes of large inputs go
// through the wide kernel where it runs (so TestSum256AndKeySum tests it):
// a Hasher holds a wide hasher after its first Write, and the pools give
// wide hashers.
func TestWidePathTaken(t *testing.T) {
	if !haveB3Hash16 {
		t.Skip("no AVX-512 here")
	}
	var h Hasher
	_, _ = h.Write(make([]byte, 100))
	if h.w == nil || h.z != nil {
		t.Fatalf("Hasher with AVX-512: wide state %v, zeebo state %v", h.w != nil, h.z != nil)
	}
	h.Sum256()
	if h.w != nil {
		t.Fatal("Hasher kept its state after Sum256")
	}
	key := DeriveKey([32]byte{1}, "s")
	if key.wide == nil {
		t.Fatal("Key without a wide pool on an AVX-512 machine")
	}
}

// FuzzB3Wide checks the wide hash (the assembly where it runs, else the
// Go kernel) against github.com/zeebo/blake3 on fuzzed inputs, keyed and
// not, in one piece and in pieces of fuzzed sizes.
func FuzzB3Wide(f *testing.F) {
	f.Add([]byte("abc"), uint16(1), uint64(0))
	f.Add(make([]byte, 2048), uint16(1024), uint64(1))
	f.Add(make([]byte, 17<<10+5), uint16(3000), uint64(2))
	f.Add(make([]byte, 300<<10), uint16(16<<10), uint64(3))
	k := b3Hash16Go
	if haveB3Hash16 {
		k = b3Hash16AVX512
	}
	plain, keyed := b3TestHasher(k, false), b3TestHasher(k, true)
	f.Fuzz(func(t *testing.T, data []byte, piece uint16, seed uint64) {
		// Short fuzzed inputs stretched to several chunks: repeated with a
		// counter, so the chunks differ.
		if r := seed % 4; r != 0 && len(data) > 0 {
			n := len(data) * int(r) * 97
			long := make([]byte, 0, n+8)
			for i := 0; len(long) < n; i++ {
				long = append(append(long, data...), byte(i), byte(i>>8))
			}
			data = long
		}
		for _, kd := range []bool{false, true} {
			h := plain
			if kd {
				h = keyed
			}
			want := b3Zeebo(t, kd, data)
			if got := h.sum(data); got != want {
				t.Fatalf("keyed=%v: sum of %d bytes: %x, zeebo %x", kd, len(data), got, want)
			}
			step := max(1, int(piece))
			for p := data; len(p) > 0; {
				m := min(len(p), step)
				h.write(p[:m])
				p = p[m:]
			}
			if got := h.final(); got != want {
				t.Fatalf("keyed=%v: %d bytes in pieces of %d: %x, zeebo %x", kd, len(data), step, got, want)
			}
		}
	})
}
