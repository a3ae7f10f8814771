package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/chunk"
)

// TestStreamBlobsShare: streams sharing a budget (StreamOptions.Share) give
// back every byte of it whichever way they end: after a stream that fn
// stopped and one that was cancelled, both with every run read ahead (so
// that runs not taken by fn still held their share), the whole budget is
// free again; a stream started from another's Started, while that one's
// last runs are opened, runs beside it; each delivers every blob once, in
// order, with its bytes, and a damaged one with its error naming the pack,
// the blob and its offset.
func TestStreamBlobsShare(t *testing.T) {
	fx := newStreamFixture(t, 10)
	ids := fx.ids
	victim := 6
	bad := fx.locations(t, ids[victim])[0]
	fx.damage(t, bad)
	wantErr := fmt.Sprintf("pack %s: data blob %s at offset %d", ShortHex(bad.Pack), ids[victim].Short(), bad.Offset)
	guard, cancelGuard := context.WithTimeout(context.Background(), time.Minute) // against a hang, not a timing
	defer cancelGuard()
	sh := NewStreamShare(1<<20, 2) // every run fits at once
	free := func(when string) {
		t.Helper()
		if !sh.sem.TryAcquire(sh.ahead) {
			t.Fatalf("%s: part of the shared budget was not given back", when)
		}
		sh.sem.Release(sh.ahead)
	}
	var reads sync.WaitGroup // every run read: the runs fn will not take hold their share
	opts := StreamOptions{RunBytes: 1, Ahead: 1, Share: sh, Buffer: BufferPooled, OnRead: func(int64) { reads.Done() }}

	stop := errors.New("stop")
	reads.Add(len(ids))
	n := 0
	err := fx.r.StreamBlobs(guard, "", DataBlob, ids, opts, func(b StreamBlob) error {
		if b.Pooled != nil {
			chunk.PutBuffer(b.Pooled)
		}
		if n++; n == 3 {
			reads.Wait()
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("stopped stream: %v", err)
	}
	free("after a stream fn stopped")

	ctx, cancel := context.WithCancel(guard)
	reads.Add(len(ids))
	n = 0
	err = fx.r.StreamBlobs(ctx, "", DataBlob, ids, opts, func(b StreamBlob) error {
		if b.Pooled != nil {
			chunk.PutBuffer(b.Pooled)
		}
		if n++; n == 4 {
			reads.Wait()
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled stream: %v", err)
	}
	free("after a cancelled stream")

	opts.OnRead = nil
	var wg sync.WaitGroup
	var second []error
	var secondOrder []int
	started := 0
	first := opts
	first.Started = func() {
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			second, secondOrder = fx.collect(t, guard, ids, opts)
		}()
	}
	errs, order := fx.collect(t, guard, ids, first)
	wg.Wait()
	if guard.Err() != nil {
		t.Fatal("the streams hung")
	}
	free("after two overlapping streams")
	if started != 1 {
		t.Fatalf("Started called %d times, want once", started)
	}
	for _, got := range []struct {
		errs  []error
		order []int
	}{{errs, order}, {second, secondOrder}} {
		for k, err := range got.errs {
			if got.order[k] != k {
				t.Fatalf("delivered in order %v, want the order given", got.order)
			}
			if k == victim {
				if err == nil || !strings.Contains(err.Error(), wantErr) {
					t.Fatalf("damaged blob %d: %v, want an error with %q", k, err, wantErr)
				}
			} else if err != nil {
				t.Fatalf("blob %d: %v", k, err)
			}
		}
	}
}

// TestStreamBlobsConsumedRunsFreeTheBudget: a run whose blobs Consume took
// holds nothing, so it gives its share of Ahead back as soon as it is
// opened, not when fn takes it in order: while fn waits on the first run's
// blob, the runs after it are read (with Ahead for two runs, two more than
// Ahead alone would let through), as far as the order's window allows
// (3/2 of Ahead: the three runs after the one fn holds) and no further;
// every blob is still delivered once, in order.
func TestStreamBlobsConsumedRunsFreeTheBudget(t *testing.T) {
	fx := newStreamFixture(t, 20)
	var ids []chunk.ID // the incompressible blobs: each run weighs ~20 KiB
	var most int64
	for i, id := range fx.ids {
		if i%2 == 1 {
			ids = append(ids, id)
			most = max(most, int64(fx.locations(t, id)[0].Length))
		}
	}
	guard, cancelGuard := context.WithTimeout(context.Background(), time.Minute) // against a hang, not a timing
	defer cancelGuard()
	var mu sync.Mutex
	reads := 0
	fourth := make(chan struct{})
	opts := StreamOptions{RunBytes: 1, Ahead: 2 * most, Buffer: BufferPooled, // two runs at once, four in the window
		OnRead: func(int64) {
			mu.Lock()
			defer mu.Unlock()
			if reads++; reads == 4 {
				close(fourth)
			}
		},
		Consume: func(_ chunk.ID, d *[]byte) { chunk.PutBuffer(d) }}
	var got []int
	err := fx.r.StreamBlobs(guard, "", DataBlob, ids, opts, func(b StreamBlob) error {
		if b.Err != nil || !b.Consumed {
			t.Fatalf("blob %d: err %v, consumed %v", b.Index, b.Err, b.Consumed)
		}
		if len(got) == 0 {
			select {
			case <-fourth:
			case <-guard.Done():
				t.Fatal("the runs after the first were not read while fn held it: consumed runs kept their share of Ahead")
			}
			mu.Lock()
			n := reads
			mu.Unlock()
			if n != 4 {
				t.Fatalf("%d runs read while fn held the first: the order's window lets the first and three more", n)
			}
		}
		got = append(got, b.Index)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range got {
		if k != i {
			t.Fatalf("delivered in order %v", got)
		}
	}
	if len(got) != len(ids) {
		t.Fatalf("%d blobs delivered, want %d", len(got), len(ids))
	}
}
