package s3

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/minio/minio-go/v7"
)

// maxBackoff caps one wait between attempts.
const maxBackoff = 30 * time.Second

// retry runs fn until it succeeds, fails with a final error, or the retries
// run out, sleeping between attempts with exponential backoff and full
// jitter (a random wait between zero and base·2^attempt), so that many
// clients hit by the same outage do not come back in lockstep. It is the
// only retry loop: minio-go sends each request once (minioRetries).
//
// The budget of one operation in a partition, where every attempt ends by
// the I/O timeout, is therefore (Retries+1)·IOTimeout plus the backoffs,
// at most RetryBase·(2^Retries−1) (each capped at maxBackoff): 1 s timeout,
// 1 retry: at most 3 s. Once an operation has spent its budget on an
// endpoint that does not answer (b.down), the next ones try once until one
// succeeds: a command that failed for a partition then spends one timeout,
// not a whole budget, on each of its last steps (its audit record, removing
// its lock); an operation that then gets an answer from the server has its
// retries again.
func (b *Backend) retry(ctx context.Context, op, name string, fn func() error) error {
	retries := b.cfg.Retries
	if b.down.Load() {
		retries = 0
	}
	var err error
	for attempt := 0; ; attempt++ {
		err = fn()
		if err == nil || answered(err) {
			// The endpoint is there: later operations get their retries
			// back, and so does this one, started while it was deemed
			// down: an answer worth a retry (a 503 of a server starting
			// up, a body damaged in transit) is what retries are for.
			b.down.Store(false)
			retries = b.cfg.Retries
		}
		if err == nil || attempt >= retries || !transient(ctx, err) {
			if err != nil && attempt >= retries && transient(ctx, err) && !answered(err) {
				// No answer at all after every attempt: the endpoint is
				// down or cut off.
				b.down.Store(true)
			}
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

// answered reports whether err is a response of the server (an S3 error
// with an HTTP status), as opposed to a request that got no answer.
func answered(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.StatusCode != 0
}
