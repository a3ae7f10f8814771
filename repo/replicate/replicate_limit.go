package replicate

import (
	"context"
	"sync"
	"time"
)

// rateLimiter paces bytes to an average rate, shared by every copy of a
// replication (all files, all destinations), because what it protects is
// one uplink. It hands out time slots: a reservation of n bytes at a rate
// of r bytes/s moves the next free slot n/r seconds on, and the caller
// waits for its slot. At most limiterBurst of idle time is banked, so the
// average over any run longer than a few seconds stays within a few per
// cent of the rate, where a classic token bucket with a large burst would
// overshoot on short runs.
type rateLimiter struct {
	mu   sync.Mutex
	rate float64 // bytes per second
	next time.Time
}

const (
	limiterBurst = 50 * time.Millisecond
	// limiterChunk is the largest single reservation, so one large read
	// cannot jump ahead of the others by seconds.
	limiterChunk = 64 << 10
)

func newRateLimiter(bytesPerSecond int64) *rateLimiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &rateLimiter{rate: float64(bytesPerSecond)}
}

// wait blocks until n more bytes fit the rate. A nil limiter never waits.
func (l *rateLimiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now.Add(-limiterBurst)) {
		l.next = now.Add(-limiterBurst)
	}
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	at := l.next
	l.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
