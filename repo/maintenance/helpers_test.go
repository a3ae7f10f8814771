package maintenance

// Test helpers of the maintenance package's own tests; the shared ones
// (test repository, file helpers, fixtures, backup, restore and verify
// steps) are repotest, backuptest, restoretest and verifytest.

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/repotest"
)

// lockInfo is the JSON of a lock file (the repository's private lockInfo).
type lockInfo struct {
	Version      int       `json:"version"`
	Host         string    `json:"host"`
	PID          int       `json:"pid"`
	Time         time.Time `json:"time"`
	Exclusive    bool      `json:"exclusive"`
	Command      string    `json:"command,omitempty"`
	BootID       string    `json:"boot_id,omitempty"`
	PIDNamespace string    `json:"pid_ns,omitempty"`
}

// writeTestLock stores li as a lock file whose mtime (the storage's clock)
// is age ago.
func writeTestLock(t *testing.T, tr *repotest.Repo, li lockInfo, age time.Duration) string {
	t.Helper()
	id, err := tr.SaveFile(context.Background(), repo.DirLocks, "lock", li) // what the repository's writeLock does
	if err != nil {
		t.Fatal(err)
	}
	name := repo.FileName(repo.DirLocks, id)
	if age != 0 {
		at := time.Now().Add(-age)
		if err := os.Chtimes(filepath.Join(tr.Dir, filepath.FromSlash(name)), at, at); err != nil {
			t.Fatal(err)
		}
	}
	return name
}
