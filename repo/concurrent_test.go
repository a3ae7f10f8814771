package repo_test

import (
	"context"
	"errors"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLocks: shared locks coexist, an exclusive one conflicts with any other
// and the error names the holder; stale locks (old, or of a dead process on
// this host) are ignored and removable.
func TestLocks(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
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
	if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "shared lock held by "+host+" pid "+pid) {
		t.Fatalf("exclusive over shared: %v", err)
	}
	if ls, _ := tr.Locks(ctx); len(ls) != 2 {
		t.Errorf("a refused lock was left behind: %d locks", len(ls))
	}
	for _, l := range []*repo.Lock{s1, s2} {
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
	if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "exclusive lock held by "+host+" pid "+pid) || !strings.Contains(err.Error(), "(prune)") {
		t.Fatalf("shared over exclusive: %v", err)
	}
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	if _, err := backup.Backup(ctx, tr.Repository, backup.BackupOptions{Paths: []string{src}}); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("backup under an exclusive lock: %v", err)
	}
	if err := x.Unlock(); err != nil {
		t.Fatal(err)
	}

	// Stale: an exclusive lock not refreshed for LockStale (by the storage's
	// clock: its file's mtime), and a fresh one of a process of this boot
	// and PID namespace that is gone.
	old := repo.LockInfo{Version: 1, Host: "elsewhere", PID: 1, Time: time.Now().UTC(), Exclusive: true, Command: "prune"}
	writeTestLock(t, tr, old, repo.LockStale+time.Minute)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	gone := repo.NewLockInfo(true, "prune")
	gone.PID = dead.Process.Pid
	writeTestLock(t, tr, gone, 0)
	ls, err := tr.Locks(ctx)
	if err != nil || len(ls) != 2 || !ls[0].Stale || !ls[1].Stale {
		t.Fatalf("locks: %+v, %v", ls, err)
	}
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}}) // stale locks do not block
	if sn == nil {
		t.Fatal("no snapshot")
	}
	removed, err := tr.RemoveLocks(ctx, repo.RemoveLocksOptions{})
	if err != nil || len(removed) != 2 || !removed[0].Removed || !removed[1].Removed {
		t.Fatalf("removed stale locks: %+v, %v", removed, err)
	}
	if ls, _ := tr.Locks(ctx); len(ls) != 0 {
		t.Errorf("%d locks left", len(ls))
	}
}

// writeTestLock stores li as a lock file whose mtime (the storage's clock)
// is age ago.
func writeTestLock(t *testing.T, tr *repotest.Repo, li repo.LockInfo, age time.Duration) string {
	t.Helper()
	name, err := tr.WriteLockForTest(context.Background(), li)
	if err != nil {
		t.Fatal(err)
	}
	if age != 0 {
		at := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(tr.Dir, filepath.FromSlash(name)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// TestLockClockSkew: staleness is judged by the storage's clock. A lock
// whose holder's clock runs 2 h behind (its JSON time is 2 h old) but that
// was just written is live; a lock whose holder's clock runs ahead (fresh
// JSON time) but that the storage wrote 2 h ago is stale.
func TestLockClockSkew(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	behind := repo.LockInfo{Version: 1, Host: "skewed-host", PID: 4242, Time: time.Now().Add(-2 * time.Hour).UTC(), Command: "backup",
		BootID: "other-boot", PIDNamespace: "pid:[1]"}
	writeTestLock(t, tr, behind, 0)
	if _, err := tr.Lock(ctx, true, "prune"); !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "lock held by skewed-host pid 4242") {
		t.Fatalf("prune beside a freshly written lock with an old clock: %v", err)
	}
	removed, err := tr.RemoveLocks(ctx, repo.RemoveLocksOptions{})
	if err != nil || len(removed) != 1 || removed[0].Removed || removed[0].Stale || !strings.Contains(removed[0].Reason, "on host skewed-host") {
		t.Fatalf("unlock of a live lock: %+v, %v", removed, err)
	}

	tr2 := repotest.New(t, repo.InitOptions{})
	ahead := repo.LockInfo{Version: 1, Host: "fast-host", PID: 4242, Time: time.Now().Add(time.Hour).UTC(), Command: "backup",
		BootID: "other-boot", PIDNamespace: "pid:[1]"}
	writeTestLock(t, tr2, ahead, 2*time.Hour)
	l, err := tr2.Lock(ctx, true, "prune")
	if err != nil {
		t.Fatalf("prune beside a lock the storage wrote 2 h ago: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestLockOtherPIDNamespace: a lock of a process in another PID namespace
// of this host (a container sharing the host name) whose pid is not alive
// here is live: its pid means nothing in this namespace. The error tells how
// to remove it if its process is really gone, and unlock does so.
func TestLockOtherPIDNamespace(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	li := repo.NewLockInfo(false, "backup")
	li.PID = dead.Process.Pid
	li.PIDNamespace = "pid:[1]" // not ours
	name := writeTestLock(t, tr, li, 0)
	_, err := tr.Lock(ctx, true, "prune")
	id := filepath.Base(name)[:8]
	if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "another boot or PID namespace") ||
		!strings.Contains(err.Error(), "run 'memento unlock --remove "+id+"'") {
		t.Fatalf("prune beside a lock of another PID namespace: %v", err)
	}
	// An old-format lock (no ids) of a dead pid is judged by age only.
	oldFormat := repo.LockInfo{Version: 1, Host: li.Host, PID: li.PID, Time: time.Now().UTC(), Command: "backup"}
	writeTestLock(t, tr, oldFormat, 0)
	ls, err := tr.RemoveLocks(ctx, repo.RemoveLocksOptions{})
	if err != nil || len(ls) != 2 || ls[0].Stale || ls[1].Stale || ls[0].Removed || ls[1].Removed {
		t.Fatalf("plain unlock: %+v, %v", ls, err)
	}
	if _, err := tr.RemoveLocks(ctx, repo.RemoveLocksOptions{IDs: []string{"00000000"}}); !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("unlock --remove of no lock: %v", err)
	}
	ls, err = tr.RemoveLocks(ctx, repo.RemoveLocksOptions{IDs: []string{id}})
	if err != nil || len(ls) != 2 {
		t.Fatalf("unlock --remove %s: %+v, %v", id, ls, err)
	}
	for _, l := range ls {
		if l.Removed != (l.Name == name) {
			t.Errorf("unlock --remove %s: %s removed=%v", id, l.Name, l.Removed)
		}
	}
	if _, err := tr.RemoveLocks(ctx, repo.RemoveLocksOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if ls, _ := tr.Locks(ctx); len(ls) != 0 {
		t.Errorf("%d locks left after unlock --remove-all", len(ls))
	}
}
