package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo/backend/local"
	"memento/repo/slabmem"
)

// TestStreamBlobsMem: a stream given a slabmem.Mem (StreamOptions.Mem)
// delivers the same bytes as one without, under every buffer policy, with
// its plaintexts in the Mem (fn gives each back with PutPooled or Mem.Put,
// and Put says the buffer was the Mem's) and its runs read into it
// (AroundCache on a local repository); and however the stream ends (fn's
// error, cancellation, with every run read ahead and not taken yet; a
// damaged blob; a Mem too small, whose buffers are then the heap's) every
// buffer of the Mem is back once it returns (Out is 0).
func TestStreamBlobsMem(t *testing.T) {
	be, err := local.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := newStreamFixtureOn(t, 24, be)
	ids := fx.ids
	guard, cancelGuard := context.WithTimeout(context.Background(), time.Minute) // against a hang, not a timing
	defer cancelGuard()

	// give takes back what fn got, as the policy says, and reports whether
	// it was the Mem's.
	give := func(m *slabmem.Mem, opts StreamOptions, b StreamBlob) bool {
		switch {
		case opts.Buffer == BufferPooled && b.Pooled != nil:
			ours := m.Put(*b.Pooled)
			if !ours {
				chunk.PutBuffer(b.Pooled)
			}
			return ours
		case opts.Buffer == BufferFresh:
			return m.Put(b.Data)
		}
		return false // borrowed: the stream's to give back
	}
	// stream delivers ids and returns their bytes by index and how many
	// plaintexts fn got from the Mem.
	stream := func(ctx context.Context, m *slabmem.Mem, opts StreamOptions, stop func(n int) error) ([][]byte, int, error) {
		opts.Mem = m
		got := make([][]byte, len(ids))
		ours, n := 0, 0
		err := fx.r.StreamBlobs(ctx, "", DataBlob, ids, opts, func(b StreamBlob) error {
			if b.Err == nil {
				got[b.Index] = bytes.Clone(b.Data)
				if give(m, opts, b) {
					ours++
				}
			}
			n++
			if stop != nil {
				return stop(n)
			}
			return nil
		})
		return got, ours, err
	}
	for _, pol := range []struct {
		name string
		opts StreamOptions
	}{
		{"pooled", StreamOptions{Buffer: BufferPooled}},
		{"fresh", StreamOptions{Buffer: BufferFresh}},
		{"borrowed", StreamOptions{Buffer: BufferBorrowed}},
	} {
		for _, ahead := range []int64{0, 1 << 20} {
			opts := pol.opts
			opts.AroundCache, opts.Ahead, opts.Workers, opts.RunBytes = true, ahead, 2, 64<<10
			t.Run(fmt.Sprintf("%s/ahead=%d", pol.name, ahead), func(t *testing.T) {
				want, _, err := stream(guard, nil, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i, id := range ids {
					if !bytes.Equal(want[i], fx.data[id]) {
						t.Fatalf("blob %d without a Mem: wrong bytes", i)
					}
				}
				m := slabmem.New()
				defer m.Release()
				got, ours, err := stream(guard, m, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i := range ids {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("blob %d: bytes differ with a Mem", i)
					}
				}
				if pol.opts.Buffer != BufferBorrowed && ours != len(ids) {
					t.Fatalf("%d of %d plaintexts came from the Mem", ours, len(ids))
				}
				if n := m.Out(); n != 0 {
					t.Fatalf("%d buffers of the Mem not given back", n)
				}

				// Too small a Mem (no slab at all): the heap's buffers,
				// the same bytes.
				small := slabmem.NewLimit(1 << 20)
				got, ours, err = stream(guard, small, opts, nil)
				if err != nil || ours != 0 || small.Bytes() != 0 {
					t.Fatalf("a Mem without room: err %v, %d plaintexts from it, %d bytes mapped", err, ours, small.Bytes())
				}
				for i := range ids {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("blob %d: bytes differ with a full Mem", i)
					}
				}
			})
		}
	}

	t.Run("runs read into the Mem", func(t *testing.T) {
		// One run at a time on the calling goroutine, borrowed: when a run
		// was read, the only buffer out is the run's.
		m := slabmem.New()
		defer m.Release()
		var outs []int
		opts := StreamOptions{AroundCache: true, Buffer: BufferBorrowed, RunBytes: 64 << 10, Mem: m,
			OnRead: func(int64) { outs = append(outs, m.Out()) }}
		if _, _, err := stream(guard, m, opts, nil); err != nil {
			t.Fatal(err)
		}
		if len(outs) < 2 {
			t.Fatalf("%d runs read, want several", len(outs))
		}
		for k, n := range outs {
			if n != 1 {
				t.Fatalf("run %d read with %d buffers of the Mem out, want its own alone", k, n)
			}
		}
		if n := m.Out(); n != 0 {
			t.Fatalf("%d buffers of the Mem not given back", n)
		}
	})

	// Every run read ahead before fn stops the stream (returns an error)
	// or cancels it: the runs and plaintexts fn never took are given back.
	for _, pol := range []BufferPolicy{BufferPooled, BufferFresh, BufferBorrowed} {
		for _, how := range []string{"fn's error", "cancelled"} {
			t.Run(fmt.Sprintf("policy %d, %s", pol, how), func(t *testing.T) {
				m := slabmem.New()
				defer m.Release()
				var reads sync.WaitGroup
				reads.Add(len(ids))
				opts := StreamOptions{AroundCache: true, Ahead: 1 << 30, Workers: 2, RunBytes: 1, Buffer: pol,
					OnRead: func(int64) { reads.Done() }}
				ctx, cancel := context.WithCancel(guard)
				defer cancel()
				stopErr := errors.New("stop")
				_, _, err := stream(ctx, m, opts, func(n int) error {
					if n != 3 {
						return nil
					}
					reads.Wait()
					if how == "cancelled" {
						cancel()
						return nil
					}
					return stopErr
				})
				want := stopErr
				if how == "cancelled" {
					want = context.Canceled
				}
				if !errors.Is(err, want) {
					t.Fatalf("stream: %v, want %v", err, want)
				}
				if n := m.Out(); n != 0 {
					t.Fatalf("%d buffers of the Mem not given back", n)
				}
			})
		}
	}
}

// TestStreamBlobsMemDamaged: a damaged blob read with a Mem gets its error
// naming the pack, the blob and its offset, the others their bytes, and
// the damaged one's plaintext buffer goes back to the Mem (its copy in the
// other pack is not read: no fallback).
func TestStreamBlobsMemDamaged(t *testing.T) {
	fx := newStreamFixture(t, 10)
	ids := fx.ids
	for _, victim := range []int{3, 6} { // one stored raw, one compressed
		bad := fx.locations(t, ids[victim])[0]
		fx.damage(t, bad)
	}
	for _, pol := range []BufferPolicy{BufferPooled, BufferFresh, BufferBorrowed} {
		m := slabmem.New()
		opts := StreamOptions{Ahead: 1 << 20, Workers: 2, Buffer: pol, Mem: m}
		errs := make([]error, len(ids))
		err := fx.r.StreamBlobs(context.Background(), "", DataBlob, ids, opts, func(b StreamBlob) error {
			errs[b.Index] = b.Err
			if b.Err == nil && !bytes.Equal(b.Data, fx.data[b.ID]) {
				t.Errorf("policy %d: blob %d: wrong bytes", pol, b.Index)
			}
			switch pol {
			case BufferPooled:
				PutPooled(m, b.Pooled)
			case BufferFresh:
				m.Put(b.Data)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range errs {
			if i != 3 && i != 6 {
				if e != nil {
					t.Errorf("policy %d: blob %d: %v", pol, i, e)
				}
				continue
			}
			l := fx.locations(t, ids[i])[0]
			if want := fmt.Sprintf("pack %s: data blob %s at offset %d", ShortHex(l.Pack), ids[i].Short(), l.Offset); e == nil || e.Error()[:len(want)] != want {
				t.Errorf("policy %d: blob %d: error %v, want it to start with %q", pol, i, e, want)
			}
		}
		if n := m.Out(); n != 0 {
			t.Errorf("policy %d: %d buffers of the Mem not given back", pol, n)
		}
		m.Release()
	}
}
