package backup

// What only this package's tests need; the rest is in repo/repotest.
// (backuptest imports this package, so its tests back up through mustBackup.)

import (
	"context"
	"testing"

	"memento/repo"
)

// mustBackup backs up what opts say and fails the test on error.
func mustBackup(t testing.TB, r *repo.Repository, opts BackupOptions) *repo.Snapshot {
	t.Helper()
	sn, err := Backup(context.Background(), r, opts)
	if err != nil {
		t.Fatalf("backup %v: %v", opts.Paths, err)
	}
	return sn
}
