package repo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo/backend/mem"
)

// streamFixture is a repository in memory whose blobs were each stored
// twice, in two packs (two packers that did not know of each other).
type streamFixture struct {
	r    *Repository
	be   *mem.Backend
	ids  []chunk.ID
	data map[chunk.ID][]byte
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newStreamFixture(t *testing.T, n int) *streamFixture {
	t.Helper()
	return newStreamFixtureOn(t, n, mem.New("stream"))
}

// newStreamFixtureOn is newStreamFixture on the backend be (fx.be is set
// when be is in memory).
func newStreamFixtureOn(t *testing.T, n int, be Backend) *streamFixture {
	t.Helper()
	ctx := context.Background()
	if _, err := Init(ctx, be, InitOptions{Password: testPassword, KDF: fastKDF}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	r, err := Open(ctx, be, Options{Password: testPassword, CacheDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	fx := &streamFixture{r: r, data: map[chunk.ID][]byte{}, logs: logs}
	fx.be, _ = be.(*mem.Backend)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		d := make([]byte, 20<<10+i)
		if i%2 == 0 { // compressible: stored compressed
			for j := range d {
				d[j] = byte(j / 512)
			}
			d[0] = byte(i)
		} else {
			for j := range d {
				d[j] = byte(rng.Uint32())
			}
		}
		id := r.ChunkKey("").Sum(d)
		fx.ids = append(fx.ids, id)
		fx.data[id] = d
	}
	for range 2 {
		p := r.NewPacker(ctx, "")
		for _, id := range fx.ids {
			d := fx.data[id]
			stored, compressed := chunk.Compress(nil, d, chunk.LevelDefault)
			var flags uint8
			if compressed {
				flags = FlagCompressed
			} else {
				stored = d
			}
			if err := p.Add(DataBlob, id, flags, len(d), stored); err != nil {
				t.Fatal(err)
			}
		}
		packs, _, err := p.Flush()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SaveIndex(ctx, packs); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

// locations returns the two locations of id, the one Locate gives first.
func (fx *streamFixture) locations(t *testing.T, id chunk.ID) []index.Location {
	t.Helper()
	all, err := fx.r.Index().LookupAll(StorageSpace(""), []chunk.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	locs := all[id]
	first, err := fx.r.Locate("", []chunk.ID{id})
	if err != nil || len(locs) != 2 || locs[0].Pack == locs[1].Pack || first[id] != locs[0] {
		t.Fatalf("setup: %s has locations %+v, Locate %+v (%v)", id.Short(), locs, first[id], err)
	}
	return locs
}

// damage flips a byte in the middle of the stored blob at l.
func (fx *streamFixture) damage(t *testing.T, l index.Location) {
	t.Helper()
	err := fx.be.Damage(PackName(l.Pack), func(b []byte) []byte {
		b[int64(l.Offset)+int64(l.Length)/2] ^= 0x55
		return b
	})
	if err != nil {
		t.Fatal(err)
	}
}

// collect runs StreamBlobs and checks that every id is delivered exactly
// once; it returns the errors by index and the order of delivery.
func (fx *streamFixture) collect(t *testing.T, ctx context.Context, ids []chunk.ID, opts StreamOptions) ([]error, []int) {
	t.Helper()
	errs := make([]error, len(ids))
	seen := make([]bool, len(ids))
	var order []int
	err := fx.r.StreamBlobs(ctx, "", DataBlob, ids, opts, func(b StreamBlob) error {
		if seen[b.Index] {
			t.Errorf("blob %d delivered twice", b.Index)
		}
		seen[b.Index] = true
		order = append(order, b.Index)
		if b.ID != ids[b.Index] {
			t.Errorf("blob %d: ID %s, want %s", b.Index, b.ID.Short(), ids[b.Index].Short())
		}
		errs[b.Index] = b.Err
		if b.Err == nil && !bytes.Equal(b.Data, fx.data[b.ID]) {
			t.Errorf("blob %d: wrong bytes", b.Index)
		}
		if opts.Buffer == BufferPooled && b.Pooled != nil {
			chunk.PutBuffer(b.Pooled)
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		t.Fatalf("StreamBlobs: %v", err)
	}
	for i, s := range seen {
		if !s {
			t.Errorf("blob %d not delivered", i)
		}
	}
	return errs, order
}

var streamPolicies = []struct {
	name string
	opts StreamOptions
}{
	{"fresh sequential sorted", StreamOptions{Sort: true, AroundCache: true}},
	{"pooled ahead", StreamOptions{Buffer: BufferPooled, Ahead: 64 << 10, Workers: 2}},
	{"borrowed ahead small runs", StreamOptions{Buffer: BufferBorrowed, Ahead: 1 << 20, RunBytes: 50 << 10}},
}

func TestStreamBlobsPolicies(t *testing.T) {
	fx := newStreamFixture(t, 24)
	// Given out of pack order, with a repeat.
	ids := append([]chunk.ID{}, fx.ids[12:]...)
	ids = append(ids, fx.ids[:12]...)
	ids = append(ids, fx.ids[3])
	for _, p := range streamPolicies {
		t.Run(p.name, func(t *testing.T) {
			errs, order := fx.collect(t, context.Background(), ids, p.opts)
			for i, err := range errs {
				if err != nil {
					t.Errorf("blob %d: %v", i, err)
				}
			}
			if !p.opts.Sort {
				for k := range order {
					if order[k] != k {
						t.Fatalf("delivered in order %v, want the order given", order)
					}
				}
			}
		})
	}
}

// TestStreamBlobsFallback: a blob whose first copy is damaged (at rest, or
// cut short or corrupted in flight) is delivered from its second copy with
// a warning naming the damaged pack; without the fallback its error names
// the pack and the blob; with both copies damaged the first one's error is
// delivered.
func TestStreamBlobsFallback(t *testing.T) {
	fx := newStreamFixture(t, 8)
	victim := fx.ids[5]
	locs := fx.locations(t, victim)
	bad, good := ShortHex(locs[0].Pack), ShortHex(locs[1].Pack)

	for _, p := range streamPolicies {
		t.Run("in flight "+p.name, func(t *testing.T) {
			fx.be.SetHook(func(op mem.Op, name string, off, length int64) mem.Fault {
				if op == mem.OpOpen && name == PackName(locs[0].Pack) {
					return mem.Fault{Short: true, ShortAfter: int64(locs[0].Offset) - off + 10}
				}
				return mem.Fault{}
			})
			defer fx.be.SetHook(nil)
			opts := p.opts
			opts.Fallback, opts.Who = true, "test"
			errs, _ := fx.collect(t, context.Background(), fx.ids, opts)
			for i, err := range errs {
				if err != nil {
					t.Errorf("blob %d: %v", i, err)
				}
			}
			if !strings.Contains(fx.logs.String(), "test: damaged blob replaced by another copy") ||
				!strings.Contains(fx.logs.String(), "pack="+bad) {
				t.Errorf("no warning naming pack %s:\n%s", bad, fx.logs.String())
			}
		})
	}

	fx.damage(t, locs[0])
	for _, p := range streamPolicies {
		t.Run("at rest "+p.name, func(t *testing.T) {
			errs, _ := fx.collect(t, context.Background(), fx.ids, p.opts)
			var ce *CorruptError
			if err := errs[5]; !errors.As(err, &ce) || !strings.Contains(err.Error(), "pack "+bad) || !strings.Contains(err.Error(), victim.Short()) {
				t.Errorf("without fallback: %v, want a CorruptError naming pack %s and blob %s", err, bad, victim.Short())
			}
			for i, err := range errs {
				if err != nil && i != 5 {
					t.Errorf("blob %d: %v", i, err)
				}
			}
			var logs syncBuffer
			opts := p.opts
			opts.Fallback, opts.Logger = true, slog.New(slog.NewTextHandler(&logs, nil))
			errs, _ = fx.collect(t, context.Background(), fx.ids, opts)
			for i, err := range errs {
				if err != nil {
					t.Errorf("with fallback, blob %d: %v", i, err)
				}
			}
			if l := logs.String(); !strings.Contains(l, "pack="+bad) || !strings.Contains(l, "copy="+good) || !strings.Contains(l, "blob="+victim.Short()) {
				t.Errorf("warning does not name the damaged pack %s and the copy %s:\n%s", bad, good, l)
			}
		})
	}

	fx.damage(t, locs[1])
	errs, _ := fx.collect(t, context.Background(), fx.ids, StreamOptions{Fallback: true})
	if err := errs[5]; !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "pack "+bad) {
		t.Errorf("both copies damaged: %v, want the first copy's error", err)
	}
}

// A blob the index does not know gets its own error; a cancelled context
// gives every blob its error.
func TestStreamBlobsMissingAndCancelled(t *testing.T) {
	fx := newStreamFixture(t, 4)
	ids := append([]chunk.ID{{9, 9, 9}}, fx.ids...)
	for _, p := range streamPolicies {
		errs, _ := fx.collect(t, context.Background(), ids, p.opts)
		if !errors.Is(errs[0], ErrNotFound) {
			t.Errorf("%s: unknown blob: %v", p.name, errs[0])
		}
		for i, err := range errs[1:] {
			if err != nil {
				t.Errorf("%s: blob %d: %v", p.name, i+1, err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		errs, _ = fx.collect(t, ctx, fx.ids, p.opts)
		for i, err := range errs {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: cancelled, blob %d: %v", p.name, i, err)
			}
		}
	}
	// fn's error stops the stream.
	stop := errors.New("stop")
	calls := 0
	err := fx.r.StreamBlobs(context.Background(), "", DataBlob, fx.ids, StreamOptions{Ahead: 1 << 20, Buffer: BufferBorrowed}, func(StreamBlob) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("fn's error: %v after %d calls", err, calls)
	}
}

// With StreamOptions.Alloc, every buffer handed out is either delivered as
// a blob's Data or given back through Free: a damaged blob (with or
// without the fallback to its other copy) loses the caller no memory.
func TestStreamBlobsAllocFree(t *testing.T) {
	fx := newStreamFixture(t, 8)
	fx.damage(t, fx.locations(t, fx.ids[3])[0])
	for _, fallback := range []bool{false, true} {
		out := map[*byte]bool{} // buffers handed out, not yet given back
		var mu sync.Mutex
		opts := StreamOptions{Sort: true, AroundCache: true, Fallback: fallback,
			Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
			Alloc: func(n int) []byte {
				b := make([]byte, n, n+100)
				mu.Lock()
				out[&b[:1][0]] = true
				mu.Unlock()
				return b
			},
			Free: func(b []byte) {
				mu.Lock()
				defer mu.Unlock()
				if !out[&b[:1][0]] {
					t.Errorf("Free of a buffer Alloc did not give or that was given back")
				}
				delete(out, &b[:1][0])
			}}
		delivered := 0
		err := fx.r.StreamBlobs(context.Background(), "", DataBlob, fx.ids, opts, func(b StreamBlob) error {
			if b.Err != nil {
				if fallback || b.Index != 3 {
					t.Errorf("fallback %v: blob %d: %v", fallback, b.Index, b.Err)
				}
				return nil
			}
			if !bytes.Equal(b.Data, fx.data[b.ID]) {
				t.Errorf("blob %d: wrong bytes", b.Index)
			}
			if cap(b.Data) > 0 && out[&b.Data[:1][0]] {
				delete(out, &b.Data[:1][0])
				delivered++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 0 {
			t.Errorf("fallback %v: %d buffers from Alloc neither delivered nor given back", fallback, len(out))
		}
		if want := len(fx.ids) - 1; delivered != want { // the damaged one fails, or comes from its copy (ReadBlob's memory)
			t.Errorf("fallback %v: %d blobs delivered in Alloc's memory, want %d", fallback, delivered, want)
		}
	}
}

// A blob not delivered because fn stopped the stream goes back to Free too.
func TestStreamBlobsAllocFreeOnStop(t *testing.T) {
	fx := newStreamFixture(t, 8)
	out := map[*byte]bool{}
	opts := StreamOptions{Sort: true, AroundCache: true,
		Alloc: func(n int) []byte {
			b := make([]byte, n, n+100)
			out[&b[:1][0]] = true
			return b
		},
		Free: func(b []byte) { delete(out, &b[:1][0]) }}
	errStop := errors.New("stop")
	n := 0
	err := fx.r.StreamBlobs(context.Background(), "", DataBlob, fx.ids, opts, func(b StreamBlob) error {
		if n++; n == 3 {
			return errStop
		}
		delete(out, &b.Data[:1][0]) // delivered: the caller's
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("StreamBlobs: %v, want fn's error", err)
	}
	if len(out) != 1 { // the third: fn got it and returned the error, so it is fn's
		t.Errorf("%d buffers neither delivered nor given back, want 1 (the one fn stopped on)", len(out))
	}
}
