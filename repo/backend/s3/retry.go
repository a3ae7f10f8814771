package s3

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// maxBackoff caps one wait between attempts.
const maxBackoff = 30 * time.Second

// retry runs fn until it succeeds, fails with a final error, or the retries
// run out, sleeping between attempts with exponential backoff and full
// jitter (a random wait between zero and base·2^attempt), so that many
// clients hit by the same outage do not come back in lockstep. minio-go
// already retries each HTTP request a few times within a second or so; this
// outer loop rides out outages of tens of seconds.
func (b *Backend) retry(ctx context.Context, op, name string, fn func() error) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = fn()
		if err == nil || attempt >= b.cfg.Retries || !transient(ctx, err) {
			return err
		}
		wait := b.cfg.RetryBase << attempt
		if wait > maxBackoff || wait <= 0 {
			wait = maxBackoff
		}
		wait = time.Duration(rand.Int64N(int64(wait)) + 1)
		slog.Debug("s3: transient error, retrying", "op", op, "file", name, "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
