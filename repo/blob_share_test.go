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
// back every byte of it whichever way they end, so that a stream after
// one that stopped early (fn's error) or was cancelled still runs; one
// started from another's Started, while that one's last runs are opened,
// runs beside it; each delivers every blob once, in order, with its bytes,
// and a damaged one with its error naming the pack, the blob and its
// offset.
// The budget fits one run: a share leaked by one stream would block the
// next one for good (the test's guard fails it).
func TestStreamBlobsShare(t *testing.T) {
	fx := newStreamFixture(t, 10)
	ids := fx.ids
	victim := 6
	bad := fx.locations(t, ids[victim])[0]
	fx.damage(t, bad)
	wantErr := fmt.Sprintf("pack %s: data blob %s at offset %d", ShortHex(bad.Pack), ids[victim].Short(), bad.Offset)
	guard, cancelGuard := context.WithTimeout(context.Background(), time.Minute) // against a hang, not a timing
	defer cancelGuard()
	sh := NewStreamShare(2, 2)
	opts := StreamOptions{RunBytes: 1, Ahead: 1 << 30, Share: sh, Buffer: BufferPooled}

	stop := errors.New("stop")
	n := 0
	err := fx.r.StreamBlobs(guard, "", DataBlob, ids, opts, func(b StreamBlob) error {
		if b.Pooled != nil {
			chunk.PutBuffer(b.Pooled)
		}
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("stopped stream: %v", err)
	}

	ctx, cancel := context.WithCancel(guard)
	n = 0
	err = fx.r.StreamBlobs(ctx, "", DataBlob, ids, opts, func(b StreamBlob) error {
		if b.Pooled != nil {
			chunk.PutBuffer(b.Pooled)
		}
		if n++; n == 4 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled stream: %v", err)
	}

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
		t.Fatal("the shared budget was not given back: the streams after one that stopped or was cancelled hung")
	}
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
