// Package backuptest takes the backups other packages' tests start from:
// plain paths, or an Engram space recorded as the CLI records it.
package backuptest

import (
	"context"
	"testing"

	"memento/repo"
	"memento/repo/backup"
)

// Backup backs up what opts say and fails the test on error.
func Backup(t testing.TB, r *repo.Repository, opts backup.BackupOptions) *repo.Snapshot {
	t.Helper()
	sn, err := backup.Backup(context.Background(), r, opts)
	if err != nil {
		t.Fatalf("backup %v: %v", opts.Paths, err)
	}
	return sn
}

// Space backs up a space of dataDir as the CLI does, recording its WAL
// range and state digest in the manifest.
func Space(t testing.TB, r *repo.Repository, dataDir, space string) *repo.Snapshot {
	t.Helper()
	rec := backup.NewEngramRecorder(context.Background(), dataDir, space)
	defer rec.Close()
	rec.DigestKind = r.Config().StateDigestKind()
	opts := backup.BackupOptions{Space: space, DataDir: dataDir}
	rec.Attach(&opts)
	sn, err := backup.Backup(context.Background(), r, opts)
	if err != nil {
		t.Fatalf("backup space %s: %v", space, err)
	}
	return sn
}
