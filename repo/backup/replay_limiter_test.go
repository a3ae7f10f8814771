package backup

import (
	"context"
	"errors"
	"testing"
	"time"

	"memento/walreplay"
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

// TestTakesTurn: a replay from the start takes a turn only when its WAL is
// larger than replayAloneWALBytes, so the spaces of a 1 GiB data dir (WALs
// of 160-180 MB) replay at once and those of a 10 GiB one one at a time.
func TestTakesTurn(t *testing.T) {
	seg := func(sizes ...int64) []walreplay.SegmentInfo {
		var s []walreplay.SegmentInfo
		for _, n := range sizes {
			s = append(s, walreplay.SegmentInfo{Size: n})
		}
		return s
	}
	for _, c := range []struct {
		segs []walreplay.SegmentInfo
		want bool
	}{
		{nil, false},
		{seg(64<<20, 64<<20, 32<<20), false},           // 160 MiB: a 1 GiB data dir's space
		{seg(64<<20, 64<<20, 64<<20, 64<<20), false},   // exactly the bound
		{seg(64<<20, 64<<20, 64<<20, 64<<20, 1), true}, // one byte over
		{seg(1<<30, 700<<20), true},                    // 1.7 GiB: a 10 GiB data dir's space
	} {
		if got := takesTurn(nil, c.segs); got != c.want {
			t.Errorf("takesTurn(nil, %d bytes of WAL) = %v, want %v", walBytes(c.segs), got, c.want)
		}
	}
}
