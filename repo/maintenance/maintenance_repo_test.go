package maintenance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"memento/repo"
)

// heldRepo is a pruneRepo held by another process: Lock fails with
// repo.ErrLocked and Locks lists the holders. Any other call panics (nil
// embedded interface), which proves Prune changes nothing when it cannot
// lock.
type heldRepo struct {
	pruneRepo
	locks []repo.LockStatus
}

func (f *heldRepo) Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error) {
	if !exclusive || command != "prune" {
		return nil, fmt.Errorf("unexpected lock request %v %q", exclusive, command)
	}
	return nil, fmt.Errorf("%w by another process", repo.ErrLocked)
}

// LockPrune succeeds: phase 1's lock is shared; Prune then finds the
// other process's lock and refuses before it reads anything.
func (f *heldRepo) LockPrune(ctx context.Context, command string) (*repo.Lock, error) {
	return repo.UnheldLock(ctx), nil
}

func (f *heldRepo) Locks(ctx context.Context) ([]repo.LockStatus, error) { return f.locks, nil }

// TestPruneLockedWithoutRepository runs Prune on a fake Repository whose
// lock is held: the error is repo.ErrLocked and names the live holder (not
// the stale one) and how to clear a lock whose process is gone.
func TestPruneLockedWithoutRepository(t *testing.T) {
	f := &heldRepo{locks: []repo.LockStatus{
		{Host: "db1", PID: 4242, Command: "wal watch", Time: time.Now().Add(-time.Minute), Local: true},
		{Host: "db2", PID: 7, Command: "backup", Time: time.Now().Add(-time.Hour), Stale: true},
	}}
	res, err := Prune(context.Background(), f, PruneOptions{})
	if res != nil || !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("Prune = %v, %v; want nil, ErrLocked", res, err)
	}
	for _, want := range []string{"1 process holds it", "shared lock of 'wal watch' by db1 pid 4242", "memento unlock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "db2") {
		t.Errorf("error %q names the stale lock", err)
	}
}
