// Package restoretest restores snapshots for other packages' tests.
package restoretest

import (
	"context"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/restore"
)

// Restore restores sn into a fresh directory and returns it, failing the
// test on error.
func Restore(t testing.TB, r *repo.Repository, sn *repo.Snapshot) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "restored")
	if _, err := restore.Restore(context.Background(), r, sn, dst, restore.RestoreOptions{}); err != nil {
		t.Fatalf("restore %s: %v", sn.ShortID(), err)
	}
	return dst
}
