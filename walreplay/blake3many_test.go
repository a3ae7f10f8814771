package walreplay

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
)

// b3TestMessages returns messages of every length up to 5 KiB and some
// longer ones (one to many chunks, tree depths up to 5), pseudo-random bytes.
func b3TestMessages() [][]byte {
	r := rand.New(rand.NewPCG(7, 18))
	var msgs [][]byte
	lens := []int{16 << 10, 16<<10 + 1, 31*1024 + 5, 33 * 1024, 100 << 10}
	for n := 0; n <= 5<<10; n++ {
		lens = append(lens, n)
	}
	for _, n := range lens {
		m := make([]byte, n)
		for i := range m {
			m[i] = byte(r.Uint32())
		}
		msgs = append(msgs, m)
	}
	r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	return msgs
}

// TestB3Many checks the lanes' logic (blocks, chunk counters, flags, the
// tree's merges and root) against blake3.Sum256: with the Go compression,
// on every machine, and with the assembly where the CPU has it.
func TestB3Many(t *testing.T) {
	msgs := b3TestMessages()
	want := make([][32]byte, len(msgs))
	for i, m := range msgs {
		want[i] = blake3.Sum256(m)
	}
	impls := map[string]b3Compress16{"go": b3Compress16Go}
	if haveB3Compress16 {
		impls["avx512"] = b3Compress16AVX512
	}
	for name, f := range impls {
		for _, batch := range []int{1, 5, 16, 17, 64, len(msgs)} {
			t.Run(fmt.Sprintf("%s/%d", name, batch), func(t *testing.T) {
				got := make([][32]byte, len(msgs))
				var h b3Hasher
				for i := 0; i < len(msgs); i += batch {
					e := min(len(msgs), i+batch)
					h.sum(msgs[i:e], got[i:e], f)
				}
				for i := range msgs {
					if got[i] != want[i] {
						t.Fatalf("message %d (%d bytes): %x, want %x", i, len(msgs[i]), got[i], want[i])
					}
				}
			})
		}
	}
	got := make([][32]byte, len(msgs))
	b3Many(msgs, got)
	for i := range msgs {
		if got[i] != want[i] {
			t.Fatalf("b3Many: message %d (%d bytes): %x, want %x", i, len(msgs[i]), got[i], want[i])
		}
	}
}

// TestB3Compress16 checks the assembly against the Go compression on random
// lanes (any chaining value, block, counter, length and flags).
func TestB3Compress16(t *testing.T) {
	if !haveB3Compress16 {
		t.Skip("no AVX-512 here")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		var a b3Lanes
		for j := range 8 {
			for i := range 16 {
				a.cv[j][i] = r.Uint32()
			}
		}
		for j := range 16 {
			for i := range 16 {
				a.m[j][i] = r.Uint32()
			}
			a.ctr[j], a.blen[j], a.flags[j] = r.Uint32(), r.Uint32N(65), r.Uint32N(16)
		}
		b := a
		b3Compress16AVX512(&a)
		b3Compress16Go(&b)
		if a != b {
			t.Fatalf("assembly %v, Go %v", a.cv, b.cv)
		}
	}
}

// BenchmarkB3Many: element keys of WAL records of --dim 384 (1.6 KiB), 64
// at a time as ltRun hands them, against blake3.Sum256 one by one.
func BenchmarkB3Many(b *testing.B) {
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = make([]byte, 1600+i)
	}
	out := make([][32]byte, len(msgs))
	b.Run("many", func(b *testing.B) {
		b.SetBytes(int64(64 * 1632))
		for b.Loop() {
			b3Many(msgs, out)
		}
	})
	b.Run("sum256", func(b *testing.B) {
		b.SetBytes(int64(64 * 1632))
		for b.Loop() {
			for i, m := range msgs {
				out[i] = blake3.Sum256(m)
			}
		}
	})
}
