package backup

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// TestGroupedSmallFilesCancelledSameRepository: as in the agent, two
// backups cancelled at different points and the next one run on the same
// Repository (its location and group caches, no reopen): the files the
// cancelled backups claimed in groups they dropped are stored by the next
// one (claims are a backup's own, the known set is read from the index),
// which restores byte for byte; check --read-data finds nothing, on this
// Repository and on a reopened one.
func TestGroupedSmallFilesCancelledSameRepository(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 64 << 10})
	r := tr.Repository
	src := filepath.Join(t.TempDir(), "src")
	writeGroupTree(t, src, 30)
	for _, at := range []string{"src/d03", "src/d20"} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := Backup(ctx, r, BackupOptions{Paths: []string{src}, NoParent: true, BeforeDir: func(rel string) error {
			if rel == at {
				cancel()
			}
			return nil
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled backup at %s: %v", at, err)
		}
	}
	sn := mustBackup(t, r, BackupOptions{Paths: []string{src}})
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, r, sn), "src")))
	mustCheck(t, r)
	mustCheck(t, tr.Reopen(t))
}
