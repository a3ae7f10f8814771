package backup

import (
	"context"
	"errors"
	"testing"

	"memento/repo"
)

// lockFailingRepo is a Repository whose Lock fails; any other call panics
// (nil embedded interface), which proves Backup touches nothing before it
// holds the lock.
type lockFailingRepo struct {
	Repository
	err   error
	calls int
}

func (f *lockFailingRepo) Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error) {
	f.calls++
	if exclusive || command != "backup" {
		return nil, errors.New("unexpected lock request")
	}
	return nil, f.err
}

// TestBackupLockErrorWithoutRepository runs Backup on a fake Repository:
// the lock error is returned as is and nothing else is asked of the storage.
func TestBackupLockErrorWithoutRepository(t *testing.T) {
	want := errors.New("repository is locked exclusively")
	f := &lockFailingRepo{err: want}
	sn, err := Backup(context.Background(), f, BackupOptions{Paths: []string{t.TempDir()}})
	if !errors.Is(err, want) || sn != nil {
		t.Fatalf("Backup = %v, %v; want nil, %v", sn, err, want)
	}
	if f.calls != 1 {
		t.Fatalf("Lock called %d times, want 1", f.calls)
	}
}
