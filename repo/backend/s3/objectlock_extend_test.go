package s3

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"memento/repo/backend/s3/miniotest"
)

// newLockedBackend creates a backend on a new bucket with Object Lock and
// a retention of one day.
func newLockedBackend(t *testing.T) (Config, *Backend, *miniotest.Server) {
	t.Helper()
	cfg, s := testConfig(t, "")
	cfg.Bucket = newBucketName(t)
	cfg.ObjectLockDays = 1
	b, err := Create(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, b, s
}

// A pack is written with the retention and a tenth more; ExtendRetention
// lengthens it (RetainedUntil reads it back) and the retained version
// still cannot be deleted.
func TestObjectLockExtendRetention(t *testing.T) {
	ctx := context.Background()
	cfg, b, s := newLockedBackend(t)
	if b.RetentionPeriod() != 24*time.Hour || b.PackMargin() != 24*time.Hour/10 {
		t.Fatalf("period %s, margin %s", b.RetentionPeriod(), b.PackMargin())
	}
	name := "data/ab/" + fmt.Sprintf("%064x", 0xab)
	start := time.Now()
	if err := b.Write(ctx, name, bytes.NewReader([]byte("pack")), 4); err != nil {
		t.Fatal(err)
	}
	u, err := b.RetainedUntil(ctx, name)
	if err != nil || u.Before(start.Add(26*time.Hour).Truncate(time.Second)) || u.After(time.Now().Add(27*time.Hour)) {
		t.Fatalf("a new pack retained until %s (%v), want a day and a tenth from now", u, err)
	}
	want := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	if err := b.ExtendRetention(ctx, name, want); err != nil {
		t.Fatal(err)
	}
	if u, err := b.RetainedUntil(ctx, name); err != nil || !u.Equal(want.UTC()) {
		t.Fatalf("extended to %s (%v), want %s", u, err, want)
	}
	cl := s.Client(t)
	st, err := cl.StatObject(ctx, cfg.Bucket, b.key(name), minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveObject(ctx, cfg.Bucket, b.key(name), minio.RemoveObjectOptions{VersionID: st.VersionID}); err == nil {
		t.Fatal("deleted an extended pack")
	}
	if u, err := b.RetainedUntil(ctx, "data/cd/"+fmt.Sprintf("%064x", 0xcd)); err != nil || !u.IsZero() {
		t.Fatalf("a missing file: %s %v", u, err)
	}
}

// TestObjectLockRetentionCost measures what repo.ExtendRetention costs per
// pack against MinIO: with MEMENTO_RETENTION_COST=N, N packs are asked
// about (GET ?retention) and extended (PUT ?retention), 8 at a time.
func TestObjectLockRetentionCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MEMENTO_RETENTION_COST"))
	if n <= 0 {
		t.Skip("MEMENTO_RETENTION_COST=N measures N packs")
	}
	ctx := context.Background()
	_, b, _ := newLockedBackend(t)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("data/%02x/%064x", i%256, i)
		if err := b.Write(ctx, names[i], bytes.NewReader([]byte("pack")), 4); err != nil {
			t.Fatal(err)
		}
	}
	run := func(fn func(string) error) time.Duration {
		start := time.Now()
		next := make(chan string)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for name := range next {
					if err := fn(name); err != nil {
						t.Error(err)
					}
				}
			})
		}
		for _, name := range names {
			next <- name
		}
		close(next)
		wg.Wait()
		return time.Since(start)
	}
	q := run(func(name string) error { _, err := b.RetainedUntil(ctx, name); return err })
	until := time.Now().Add(48 * time.Hour)
	x := run(func(name string) error { return b.ExtendRetention(ctx, name, until) })
	t.Logf("%d packs: asked in %s (%.2f ms each), extended in %s (%.2f ms each), 8 at a time",
		n, q.Round(time.Millisecond), float64(q.Microseconds())/1000/float64(n), x.Round(time.Millisecond), float64(x.Microseconds())/1000/float64(n))
}
