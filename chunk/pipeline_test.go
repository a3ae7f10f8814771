package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/zeebo/blake3"
)

var testKey = DeriveKey([32]byte{1, 2, 3}, "test-space")

// memStore is a store callback keeping copies of what it is given.
type memStore struct {
	mu     sync.Mutex
	chunks map[ID][]byte // plaintext
	stored map[ID][]byte
	comp   map[ID]bool
	calls  atomic.Int64
}

func newMemStore() *memStore {
	return &memStore{chunks: map[ID][]byte{}, stored: map[ID][]byte{}, comp: map[ID]bool{}}
}

func (m *memStore) store(c *Chunk) error {
	m.calls.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chunks[c.ID] = bytes.Clone(c.Raw)
	m.stored[c.ID] = bytes.Clone(c.Stored)
	m.comp[c.ID] = c.Compressed
	return nil
}

func (m *memStore) has(id ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.chunks[id]
	return ok
}

// restore reassembles a stream from ids, decoding the stored forms and
// verifying every chunk's ID.
func (m *memStore) restore(t testing.TB, ids []ID) []byte {
	t.Helper()
	var out []byte
	for i, id := range ids {
		m.mu.Lock()
		stored, comp := m.stored[id], m.comp[id]
		m.mu.Unlock()
		if stored == nil {
			t.Fatalf("chunk %d (%s) was never stored", i, id.Short())
		}
		plain := stored
		if comp {
			var err error
			if plain, err = Decompress(nil, stored); err != nil {
				t.Fatalf("chunk %d (%d stored bytes % x...): %v", i, len(stored), stored[:min(16, len(stored))], err)
			}
		}
		if testKey.Sum(plain) != id {
			t.Fatalf("chunk %d: plaintext does not hash to its id", i)
		}
		out = append(out, plain...)
	}
	return out
}

func TestSplitRoundTrip(t *testing.T) {
	p := NewPipeline(2, LevelDefault)
	defer p.Close()
	tests := []struct {
		name   string
		data   []byte
		params Params
	}{
		{"empty", nil, ParamsDefault},
		{"one byte", []byte{7}, ParamsDefault},
		{"below min", genText(1000, 1), ParamsWAL},
		{"mixed default", genMixed(24<<20, 2), ParamsDefault},
		{"floats warm pages", genFloats(3<<20+123, 3), ParamsWarm},
		{"wal", genWAL(10<<20, 4), ParamsWAL},
		{"text cold", genText(9<<20, 5), ParamsCold},
		// Holes of a sparse image: chunks of zeros of several lengths, whose
		// IDs a Split takes from the last one of the same length (split.sum).
		{"zeros around data", slices.Concat(make([]byte, 5<<20), genMixed(300<<10, 6), make([]byte, 7<<20+5), []byte{1}, make([]byte, 200<<10), genText(70<<10, 7), make([]byte, 3<<20)), ParamsDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemStore()
			ids, sum, n, err := p.Split(context.Background(), iotest.HalfReader(bytes.NewReader(tt.data)), testPol, tt.params, testKey, nil, m.store)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(tt.data)) {
				t.Fatalf("n = %d, want %d", n, len(tt.data))
			}
			if sum != blake3.Sum256(tt.data) {
				t.Fatalf("sum %x is not the BLAKE3 of the input", sum)
			}
			if len(tt.data) == 0 {
				if len(ids) != 0 || m.calls.Load() != 0 {
					t.Fatalf("empty input gave %d ids and %d stores", len(ids), m.calls.Load())
				}
				// The BLAKE3-256 of the empty string, from the reference vectors.
				if fmt.Sprintf("%x", sum) != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
					t.Fatalf("empty sum %x", sum)
				}
				return
			}
			if got := m.restore(t, ids); !bytes.Equal(got, tt.data) {
				t.Fatal("restored stream differs from input")
			}
			if blake3.Sum256(m.restore(t, ids)) != sum {
				t.Fatal("restored digest differs")
			}
			want := boundaries(t, tt.data, testPol, tt.params)
			if len(ids) != len(want) {
				t.Fatalf("%d ids, chunker alone gives %d chunks", len(ids), len(want))
			}
		})
	}
}

func TestSplitKnownSkipsStore(t *testing.T) {
	p := NewPipeline(2, LevelFastest)
	defer p.Close()
	data := genMixed(16<<20, 9)
	first := newMemStore()
	ids, _, _, err := p.Split(context.Background(), bytes.NewReader(data), testPol, ParamsDefault, testKey, nil, first.store)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[ID]bool{}
	for _, id := range ids {
		distinct[id] = true
	}
	if int(first.calls.Load()) != len(ids) {
		t.Fatalf("store called %d times for %d chunks", first.calls.Load(), len(ids))
	}
	// Second run: every chunk is known, so nothing is compressed or stored.
	second := newMemStore()
	var asked atomic.Int64
	known := func(id ID) bool { asked.Add(1); return first.has(id) }
	ids2, _, _, err := p.Split(context.Background(), bytes.NewReader(data), testPol, ParamsDefault, testKey, known, second.store)
	if err != nil {
		t.Fatal(err)
	}
	if second.calls.Load() != 0 || int(asked.Load()) != len(ids) {
		t.Fatalf("all known: %d stores, %d known() calls for %d chunks", second.calls.Load(), asked.Load(), len(ids))
	}
	if fmt.Sprint(ids2) != fmt.Sprint(ids) {
		t.Fatal("ids differ between runs")
	}
	// Change the middle: only the chunks around the change are unknown.
	changed := bytes.Clone(data)
	copy(changed[8<<20:], "a change in the middle of the stream")
	third := newMemStore()
	ids3, _, _, err := p.Split(context.Background(), bytes.NewReader(changed), testPol, ParamsDefault, testKey, first.has, third.store)
	if err != nil {
		t.Fatal(err)
	}
	if c := third.calls.Load(); c < 1 || c > 2 {
		t.Fatalf("one changed region stored %d chunks", c)
	}
	merged := newMemStore()
	for _, s := range []*memStore{first, third} {
		for id := range s.chunks {
			merged.chunks[id], merged.stored[id], merged.comp[id] = s.chunks[id], s.stored[id], s.comp[id]
		}
	}
	if !bytes.Equal(merged.restore(t, ids3), changed) {
		t.Fatal("changed stream does not restore")
	}
}

func TestSplitErrors(t *testing.T) {
	p := NewPipeline(2, LevelFastest)
	defer p.Close()
	data := genMixed(20<<20, 3)
	boom := errors.New("backend full")

	t.Run("store error", func(t *testing.T) {
		var calls, after atomic.Int64
		var returned atomic.Bool
		store := func(c *Chunk) error {
			if returned.Load() {
				after.Add(1)
			}
			if calls.Add(1) == 3 {
				return boom
			}
			return nil
		}
		_, _, _, err := p.Split(context.Background(), bytes.NewReader(data), testPol, ParamsDefault, testKey, nil, store)
		returned.Store(true)
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want store's", err)
		}
		if calls.Load() > 3+int64(2*p.Workers()) {
			t.Fatalf("store called %d times after failing on the 3rd", calls.Load())
		}
		if after.Load() != 0 {
			t.Fatal("store called after Split returned")
		}
	})
	t.Run("reader error", func(t *testing.T) {
		r := io.MultiReader(bytes.NewReader(data[:5<<20]), iotest.ErrReader(boom))
		_, _, n, err := p.Split(context.Background(), r, testPol, ParamsDefault, testKey, nil, newMemStore().store)
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want reader's", err)
		}
		if n > 5<<20 {
			t.Fatalf("n = %d past the failure", n)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var calls atomic.Int64
		store := func(c *Chunk) error {
			if calls.Add(1) == 2 {
				cancel()
			}
			return nil
		}
		_, _, n, err := p.Split(ctx, bytes.NewReader(data), testPol, ParamsDefault, testKey, nil, store)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n == int64(len(data)) && calls.Load() > 10 {
			t.Fatalf("cancel did not stop the split (%d stores)", calls.Load())
		}
	})
	t.Run("invalid params", func(t *testing.T) {
		_, _, _, err := p.Split(context.Background(), bytes.NewReader(data), testPol, Params{}, testKey, nil, newMemStore().store)
		if !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("pipeline still works", func(t *testing.T) {
		m := newMemStore()
		ids, _, _, err := p.Split(context.Background(), bytes.NewReader(data), testPol, ParamsDefault, testKey, nil, m.store)
		if err != nil || !bytes.Equal(m.restore(t, ids), data) {
			t.Fatalf("after errors: %v", err)
		}
	})
}

func TestSplitConcurrent(t *testing.T) {
	p := NewPipeline(2, LevelFastest)
	inputs := [][]byte{genMixed(9<<20, 1), genFloats(5<<20, 2), genText(7<<20, 3), genWAL(6<<20, 4), nil, genText(100, 5)}
	paramsFor := []Params{ParamsDefault, ParamsWarm, ParamsCold, ParamsWAL, ParamsDefault, ParamsDefault}
	m := newMemStore()
	var wg sync.WaitGroup
	errs := make([]error, len(inputs))
	results := make([][]ID, len(inputs))
	for i := range inputs {
		wg.Go(func() {
			var sum [32]byte
			results[i], sum, _, errs[i] = p.Split(context.Background(), bytes.NewReader(inputs[i]), testPol, paramsFor[i], testKey, m.has, m.store)
			if errs[i] == nil && sum != blake3.Sum256(inputs[i]) {
				errs[i] = fmt.Errorf("input %d: wrong sum", i)
			}
		})
	}
	wg.Wait()
	p.Close()
	for i := range inputs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(m.restore(t, results[i]), inputs[i]) {
			t.Fatalf("input %d does not restore", i)
		}
	}
	if _, _, _, err := p.Split(context.Background(), bytes.NewReader(nil), testPol, ParamsDefault, testKey, nil, m.store); !errors.Is(err, ErrClosed) {
		t.Fatalf("Split after Close: %v", err)
	}
	p.Close() // idempotent
}

// TestSplitFileLazy: a chunk lazy picks reaches store uncompressed (Lazy,
// Stored nil) and Compress gives it the stored form SplitFile gives it;
// the others reach store compressed; a second Compress changes nothing.
func TestSplitFileLazy(t *testing.T) {
	p := NewPipeline(2, LevelDefault)
	p.UseHuffPlanes(true)
	defer p.Close()
	data := genFloats(1<<20, 21)
	const rel = "warm/warm_tier.dat"
	eager := newMemStore()
	ids, sum, _, err := p.SplitFile(context.Background(), bytes.NewReader(data), rel, testPol, ParamsWarm, testKey, nil, eager.store)
	if err != nil {
		t.Fatal(err)
	}
	lazyIndex := func(i int, _ ID) bool { return i%3 == 1 }
	var mu sync.Mutex
	seen := map[int]bool{}
	lazy := newMemStore()
	store := func(c *Chunk) error {
		mu.Lock()
		seen[c.Index] = c.Lazy()
		mu.Unlock()
		if c.Lazy() != (c.Index%3 == 1) {
			return fmt.Errorf("chunk %d: Lazy %v", c.Index, c.Lazy())
		}
		if c.Lazy() {
			if c.Stored != nil || c.Compressed {
				return fmt.Errorf("chunk %d: lazy with %d stored bytes", c.Index, len(c.Stored))
			}
			c.Compress()
			first := bytes.Clone(c.Stored)
			c.Compress()
			if c.Lazy() || !bytes.Equal(first, c.Stored) {
				return fmt.Errorf("chunk %d: a second Compress changed the stored form", c.Index)
			}
		}
		return lazy.store(c)
	}
	ids2, sum2, _, err := p.SplitFileLazy(context.Background(), bytes.NewReader(data), rel, testPol, ParamsWarm, testKey, nil, lazyIndex, store)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids2) != fmt.Sprint(ids) || sum2 != sum || len(seen) != len(ids) {
		t.Fatalf("lazy split: %d ids (%d stored), eager %d", len(ids2), len(seen), len(ids))
	}
	for i, id := range ids {
		if !bytes.Equal(lazy.stored[id], eager.stored[id]) || lazy.comp[id] != eager.comp[id] {
			t.Fatalf("chunk %d (lazy %v): stored form differs from SplitFile's", i, seen[i])
		}
	}
	if !bytes.Equal(lazy.restore(t, ids2), data) {
		t.Fatal("lazy split does not restore")
	}
	var zero Chunk
	zero.Compress() // not made by a Split: nothing to do
	if zero.Lazy() || zero.Stored != nil {
		t.Fatal("Compress of a Chunk not made by a Split")
	}
}
