package repo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/repotest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lockFaultBackend fails the writes of lock files while failLocks is set,
// and calls onPack (once) before the first pack is written.
type lockFaultBackend struct {
	repo.Backend
	failLocks atomic.Bool
	onPack    func()
	once      sync.Once
}

func (b *lockFaultBackend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	if b.failLocks.Load() && strings.HasPrefix(name, repo.DirLocks+"/") {
		return fmt.Errorf("write %s: %w", name, syscall.EIO)
	}
	if strings.HasPrefix(name, "data/") && b.onPack != nil {
		b.once.Do(b.onPack)
	}
	return b.Backend.Write(ctx, name, r, size)
}

// openFaulty opens tr's repository through a lockFaultBackend, with the
// lock refreshed every 20 ms and stale after stale.
func openFaulty(t *testing.T, tr *repotest.Repo, stale time.Duration) (*repo.Repository, *lockFaultBackend) {
	t.Helper()
	fb := &lockFaultBackend{Backend: tr.Backend}
	r, err := repo.Open(context.Background(), fb, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if err != nil {
		t.Fatal(err)
	}
	r.SetLockTimingForTest(20*time.Millisecond, stale)
	return r, fb
}

// waitDone waits for ctx to end, failing the test after a minute.
func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("the lock's context was not cancelled within a minute")
	}
}

// A lock that cannot be refreshed before others would deem it stale is
// lost: its context is cancelled with ErrLockLost, which the repository
// reports.
//
// Stale after 2 s, not less: a refresh loop that wakes later than stale
// minus its period after its last good refresh gives the lock up before
// any write failed, rightly, with "the process was stopped?" for a reason
// instead of the write's error; with 200 ms a loaded machine's scheduling
// (race detector, load 15) did that once (issue 18, session 24).
func TestLockLostWhenRefreshFails(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	r, fb := openFaulty(t, tr, 2*time.Second)
	l, err := r.Lock(context.Background(), false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	fb.failLocks.Store(true)
	waitDone(t, l.Context())
	cause := context.Cause(l.Context())
	if !errors.Is(cause, repo.ErrLockLost) || !strings.Contains(cause.Error(), "of backup was not refreshed for") ||
		!strings.Contains(cause.Error(), syscall.EIO.Error()) {
		t.Fatalf("cause %q: want ErrLockLost saying the refresh failed and why", cause)
	}
	if got := r.LockLost(); got != cause {
		t.Fatalf("LockLost() = %v, want %v", got, cause)
	}
}

// A refresh that fails with time left is retried, and the lock holds.
func TestLockRefreshFailureWithTimeLeft(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	r, fb := openFaulty(t, tr, time.Hour)
	l, err := r.Lock(context.Background(), false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	fb.failLocks.Store(true)
	time.Sleep(100 * time.Millisecond) // several failed refreshes, an hour from stale
	fb.failLocks.Store(false)
	if err := l.Context().Err(); err != nil || r.LockLost() != nil {
		t.Fatalf("lock given up with time left: %v, %v", err, r.LockLost())
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// A backup whose lock another process removes (memento unlock --remove)
// stops and writes no snapshot: a prune may now delete what it relies on.
func TestBackupStopsWhenLockRemoved(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "a"), repotest.RandomBytes(1, 300<<10), 0o644)
	r, fb := openFaulty(t, tr, time.Hour)
	fb.onPack = func() {
		// Another process removes the locks until the backup's refresh
		// notices and gives its lock up (a refresh between listing and
		// deleting renames the lock: remove again).
		deadline := time.Now().Add(time.Minute)
		for r.LockLost() == nil && time.Now().Before(deadline) {
			var names []string
			_ = tr.Backend.List(context.Background(), repo.DirLocks, func(name string, _ int64) error { names = append(names, name); return nil })
			for _, n := range names {
				_ = tr.Backend.Delete(context.Background(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	_, err := backup.Backup(context.Background(), r, backup.BackupOptions{Paths: []string{src}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("backup under a removed lock: %v, want it stopped (context.Canceled)", err)
	}
	lost := r.LockLost()
	if !errors.Is(lost, repo.ErrLockLost) || !strings.Contains(lost.Error(), "of backup was removed by another process") {
		t.Fatalf("LockLost() = %v, want the removal", lost)
	}
	ids, err := tr.Reopen(t).ListSnapshotIDs(context.Background())
	if err != nil || len(ids) != 0 {
		t.Fatalf("snapshots after the lost lock: %v (%v), want none", ids, err)
	}
}

// A lock last written longer ago than the refresh can make up for (the
// process was stopped, the machine suspended: Go's monotonic clock does not
// count that, the wall clock does) is lost when the work next checks it,
// before the refresh loop runs.
func TestLockLostAfterStall(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	r, _ := openFaulty(t, tr, 2*time.Hour)
	r.SetLockTimingForTest(time.Hour, 2*time.Hour) // no refresh during the test
	l, err := r.Lock(context.Background(), false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if err := repo.LockHeld(l.Context()); err != nil {
		t.Fatalf("fresh lock: %v", err)
	}
	l.SetLastOKForTest(time.Now().Add(-90 * time.Minute)) // as after a suspend
	err = repo.LockHeld(l.Context())
	if !errors.Is(err, repo.ErrLockLost) || !strings.Contains(err.Error(), "of backup was not refreshed for 1h30m") {
		t.Fatalf("lockHeld after a stall: %v, want ErrLockLost naming the time", err)
	}
	waitDone(t, l.Context())
	if !errors.Is(r.LockLost(), repo.ErrLockLost) {
		t.Fatalf("LockLost() = %v", r.LockLost())
	}
	if err := repo.LockHeld(context.Background()); err != nil {
		t.Fatalf("no lock: %v", err)
	}
}
