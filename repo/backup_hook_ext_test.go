package repo_test

import (
	"context"

	"memento/repo"
	"memento/repo/backup"
)

// init wires the tests of package repo to repo/backup (backup_shim_test.go).
func init() {
	repo.BackupForTest = func(ctx context.Context, r *repo.Repository, opts repo.BackupOptions) (*repo.Snapshot, error) {
		return backup.Backup(ctx, r, backup.BackupOptions(opts))
	}
	repo.NewEngramRecorderForTest = func(ctx context.Context, dataDir, space string) repo.EngramRecorder {
		return recorderShim{backup.NewEngramRecorder(ctx, dataDir, space)}
	}
}

// recorderShim makes a backup.EngramRecorder attach to the repo tests'
// BackupOptions, which convert to backup.BackupOptions.
type recorderShim struct{ *backup.EngramRecorder }

func (s recorderShim) Attach(opts *repo.BackupOptions) {
	s.EngramRecorder.Attach((*backup.BackupOptions)(opts))
}
