package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/repotest"
)

// TestLockManifests: the lock of tag and forget is shared with backups and
// the like but conflicts with another one of its kind; a second taker
// waits for the first to release it (or, past its wait, fails with
// ErrLocked naming the holder); an exclusive lock is refused at once.
func TestLockManifests(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()

	a, err := tr.LockManifests(ctx, "tag")
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.Lock(ctx, false, "backup")
	if err != nil {
		t.Fatalf("shared lock beside the manifest lock: %v", err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	ls, err := tr.Locks(ctx)
	if err != nil || len(ls) != 1 || !ls[0].Manifests || ls[0].Exclusive || ls[0].Command != "tag" {
		t.Fatalf("locks: %+v, %v", ls, err)
	}
	if _, err := tr.Lock(ctx, true, "prune"); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("exclusive over the manifest lock: %v", err)
	}

	tr.SetManifestLockWaitForTest(time.Nanosecond)
	_, err = tr.LockManifests(ctx, "forget")
	if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "another command is replacing or deleting snapshots (tag, held by ") {
		t.Fatalf("second manifest lock: %v", err)
	}
	if ls, _ := tr.Locks(ctx); len(ls) != 1 {
		t.Errorf("a refused lock was left behind: %d locks", len(ls))
	}

	// With the default wait the second taker gets the lock once the first
	// releases it, and not before.
	tr.SetManifestLockWaitForTest(0)
	got := make(chan error, 1)
	var second *repo.Lock
	go func() {
		var err error
		second, err = tr.LockManifests(ctx, "forget")
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second manifest lock taken while the first is held: %v", err)
	default:
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("second manifest lock after the first was released: %v", err)
	}
	if err := second.Unlock(); err != nil {
		t.Fatal(err)
	}

	x, err := tr.Lock(ctx, true, "prune")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Unlock()
	_, err = tr.LockManifests(ctx, "tag")
	if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "exclusive lock held by") {
		t.Fatalf("manifest lock under an exclusive lock: %v", err)
	}
}
