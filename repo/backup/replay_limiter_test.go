package backup

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A shared limiter lets ConcurrentReplays replays run at once and makes the
// next wait (or give up with its context); a nil one never waits.
func TestReplayLimiter(t *testing.T) {
	l := NewReplayLimiter(0)
	if cap(l.slots) != ConcurrentReplays {
		t.Fatalf("NewReplayLimiter(0): %d slots, want ConcurrentReplays (%d)", cap(l.slots), ConcurrentReplays)
	}
	ctx := context.Background()
	for range ConcurrentReplays {
		if err := l.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire beyond the limit: err = %v, want it to wait until its context ends", err)
	}
	got := make(chan error, 1)
	go func() { got <- l.acquire(ctx) }()
	l.release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a released slot was not handed to the waiting replay")
	}

	var none *ReplayLimiter
	for range 3 {
		if err := none.acquire(ctx); err != nil {
			t.Fatalf("nil limiter: %v", err)
		}
	}
	none.release()
	done, stop := context.WithCancel(ctx)
	stop()
	if err := none.acquire(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("nil limiter, cancelled context: err = %v", err)
	}
}
