package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zeebo/blake3"
)

// TestSplitSmallMatchesSplitFile: for every kind of file and content, at
// sizes around the edges of a short stream, SplitSmall returns SplitFile's
// chunk IDs and digest and stores the same stored form, compressed or not,
// with and without form 0x03 and with and without a caller's scratch buffer
// (reused across calls, as a backup's slots are).
func TestSplitSmallMatchesSplitFile(t *testing.T) {
	p := NewPipeline(2, LevelDefault)
	defer p.Close()
	gens := map[string]func(int, uint64) []byte{"text": genText, "floats": genFloats, "wal": genWAL, "mixed": genMixed}
	paths := []string{"", "src/a.go", "spaces/x/wal/wal-000001.log", "cold/seg-1.col", "warm/warm_tier.dat"}
	var scratch []byte
	for _, huff := range []bool{false, true} {
		p.UseHuffPlanes(huff)
		for _, rel := range paths {
			params := ParamsFor(rel)
			for gname, gen := range gens {
				sizes := []int{0, 1, 63, 64, 65, 1000, 4096, 20000}
				if rel == "src/a.go" && !huff || rel == "warm/warm_tier.dat" {
					sizes = append(sizes, int(params.Min)-1) // the cold Min (2 MiB) only costs time under -race
				}
				for _, n := range sizes {
					data := gen(n, uint64(n)+7)[:n]
					want, got := newMemStore(), newMemStore()
					wids, wsum, wn, err := p.SplitFile(context.Background(), bytes.NewReader(data), rel, testPol, params, testKey, nil, want.store)
					if err != nil || wn != int64(n) {
						t.Fatalf("SplitFile %q %s %d: %d bytes, %v", rel, gname, n, wn, err)
					}
					sc := &scratch
					if n%2 == 1 {
						sc = nil
					}
					ids, sum, err := p.SplitSmall(bytes.Clone(data), sc, rel, params, testKey, nil, got.store)
					if err != nil {
						t.Fatalf("SplitSmall %q %s %d: %v", rel, gname, n, err)
					}
					name := fmt.Sprintf("huff=%v %q %s %d bytes", huff, rel, gname, n)
					if fmt.Sprint(ids) != fmt.Sprint(wids) || sum != wsum || sum != blake3.Sum256(data) {
						t.Fatalf("%s: ids %v sum %x, SplitFile %v %x", name, ids, sum, wids, wsum)
					}
					if len(ids) != min(n, 1) || got.calls.Load() != want.calls.Load() {
						t.Fatalf("%s: %d ids, %d stores, SplitFile %d stores", name, len(ids), got.calls.Load(), want.calls.Load())
					}
					for _, id := range ids {
						if !bytes.Equal(got.stored[id], want.stored[id]) || got.comp[id] != want.comp[id] {
							t.Fatalf("%s: stored %d bytes (compressed %v), SplitFile %d (%v)", name, len(got.stored[id]), got.comp[id], len(want.stored[id]), want.comp[id])
						}
					}
					if !bytes.Equal(got.restore(t, ids), data) {
						t.Fatalf("%s: does not restore", name)
					}
				}
			}
		}
	}
}

// TestSplitSmallKnownAndErrors: a known chunk is not stored, a store error
// comes back wrapped, data of Min bytes or more is refused, and a closed
// pipeline refuses work.
func TestSplitSmallKnownAndErrors(t *testing.T) {
	p := NewPipeline(1, LevelDefault)
	data := genText(5000, 3)
	m := newMemStore()
	ids, _, err := p.SplitSmall(data, nil, "a.txt", ParamsDefault, testKey, m.has, m.store)
	if err != nil || m.calls.Load() != 1 {
		t.Fatalf("first: %v, %d stores", err, m.calls.Load())
	}
	again, _, err := p.SplitSmall(data, nil, "a.txt", ParamsDefault, testKey, m.has, m.store)
	if err != nil || m.calls.Load() != 1 || again[0] != ids[0] {
		t.Fatalf("known: %v, %d stores, ids %v %v", err, m.calls.Load(), again, ids)
	}
	boom := errors.New("disk on fire")
	_, _, err = p.SplitSmall(data, nil, "a.txt", ParamsDefault, testKey, nil, func(*Chunk) error { return boom })
	if want := fmt.Sprintf("store chunk 0 (%s) at offset 0: disk on fire", ids[0].Short()); !errors.Is(err, boom) || err.Error() != want {
		t.Fatalf("store error: %v, want %q", err, want)
	}
	small := Params{Min: 64, Max: 128, AverageBits: 6}
	if _, _, err := p.SplitSmall(make([]byte, 64), nil, "a", small, testKey, nil, m.store); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("64 bytes with Min 64: %v", err)
	}
	if _, _, err := p.SplitSmall(nil, nil, "a", Params{}, testKey, nil, m.store); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("invalid params: %v", err)
	}
	p.Close()
	if _, _, err := p.SplitSmall(data, nil, "a.txt", ParamsDefault, testKey, nil, m.store); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
