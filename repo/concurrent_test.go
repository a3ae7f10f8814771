package repo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentBackups runs backups of the same paths at once, through one
// Repository and through two (as two processes would, sharing the cache):
// all succeed, and each snapshot restores exactly.
func TestConcurrentBackups(t *testing.T) {
	tr := newTestRepo(t, InitOptions{PackSize: 2 << 20})
	src := filepath.Join(t.TempDir(), "src")
	for i := range 6 {
		writeFile(t, filepath.Join(src, "f"+strconv.Itoa(i)), randomBytes(uint64(i), 1<<20+i), 0o644)
	}
	want := digestTree(t, src)
	other := tr.reopen(t)
	repos := []*Repository{tr.Repository, tr.Repository, other, other}
	sns := make([]*Snapshot, len(repos))
	errs := make([]error, len(repos))
	var wg sync.WaitGroup
	for i, r := range repos {
		wg.Go(func() {
			sns[i], errs[i] = r.Backup(context.Background(), BackupOptions{Paths: []string{src}, NoParent: i%2 == 1})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
	}
	r := tr.reopen(t)
	tr.Repository = r
	all, err := r.Snapshots(context.Background())
	if err != nil || len(all) != len(repos) {
		t.Fatalf("%d snapshots after %d concurrent backups, %v", len(all), len(repos), err)
	}
	for _, sn := range sns {
		compareTrees(t, want, digestTree(t, filepath.Join(tr.restore(t, sn), "src")))
	}
	locks, err := r.Locks(context.Background())
	if err != nil || len(locks) != 0 {
		t.Errorf("locks left behind: %+v, %v", locks, err)
	}
}

// TestLocks: shared locks coexist, an exclusive one conflicts with any other
// and the error names the holder; stale locks (old, or of a dead process on
// this host) are ignored and removable.
func TestLocks(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	ctx := context.Background()
	host, _ := os.Hostname()
	pid := strconv.Itoa(os.Getpid())

	s1, err := tr.Lock(ctx, false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := tr.Lock(ctx, false, "restore")
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	_, err = tr.Lock(ctx, true, "prune")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "shared lock held by "+host+" pid "+pid) {
		t.Fatalf("exclusive over shared: %v", err)
	}
	if ls, _ := tr.Locks(ctx); len(ls) != 2 {
		t.Errorf("a refused lock was left behind: %d locks", len(ls))
	}
	for _, l := range []*Lock{s1, s2} {
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}

	x, err := tr.Lock(ctx, true, "prune")
	if err != nil {
		t.Fatalf("exclusive lock on a free repository: %v", err)
	}
	_, err = tr.Lock(ctx, false, "backup")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "exclusive lock held by "+host+" pid "+pid) || !strings.Contains(err.Error(), "(prune)") {
		t.Fatalf("shared over exclusive: %v", err)
	}
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	if _, err := tr.Backup(ctx, BackupOptions{Paths: []string{src}}); !errors.Is(err, ErrLocked) {
		t.Fatalf("backup under an exclusive lock: %v", err)
	}
	if err := x.Unlock(); err != nil {
		t.Fatal(err)
	}

	// Stale: an exclusive lock not refreshed for LockStale, and a fresh one of
	// a process of this host that is gone.
	old := lockInfo{Version: 1, Host: "elsewhere", PID: 1, Time: time.Now().Add(-LockStale - time.Minute).UTC(), Exclusive: true, Command: "prune"}
	if _, err := tr.saveFile(ctx, dirLocks, kindLock, old); err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	gone := lockInfo{Version: 1, Host: host, PID: dead.Process.Pid, Time: time.Now().UTC(), Exclusive: true, Command: "prune"}
	if _, err := tr.saveFile(ctx, dirLocks, kindLock, gone); err != nil {
		t.Fatal(err)
	}
	ls, err := tr.Locks(ctx)
	if err != nil || len(ls) != 2 || !ls[0].Stale || !ls[1].Stale {
		t.Fatalf("locks: %+v, %v", ls, err)
	}
	sn := tr.backup(t, BackupOptions{Paths: []string{src}}) // stale locks do not block
	if sn == nil {
		t.Fatal("no snapshot")
	}
	n, err := tr.RemoveStaleLocks(ctx, false)
	if err != nil || n != 2 {
		t.Fatalf("removed %d stale locks, %v", n, err)
	}
	if ls, _ := tr.Locks(ctx); len(ls) != 0 {
		t.Errorf("%d locks left", len(ls))
	}
}
