package repo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// TestFirstTreeLoadCachesEveryTreeLocation: the first tree of a space read
// through a freshly opened repository puts the location of every tree of
// the space into the location cache (one pass over the index), so a walk of
// the snapshot costs no index transaction per directory; data chunks are
// not cached by it.
func TestFirstTreeLoadCachesEveryTreeLocation(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	const dirs = 20
	for d := range dirs {
		repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("d%02d", d), "f"), repotest.RandomBytes(uint64(d), 1000), 0o644)
	}
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})

	r := tr.Reopen(t)
	if n := r.CachedLocationsForTest(""); n != 0 {
		t.Fatalf("a fresh repository caches %d locations", n)
	}
	if _, err := r.LoadTree(context.Background(), "", sn.Root); err != nil {
		t.Fatal(err)
	}
	// The root, src/ and its 20 directories: 22 trees, and no file chunk.
	if n := r.CachedLocationsForTest(""); n != dirs+2 {
		t.Errorf("after the first tree: %d locations cached, want the %d trees", n, dirs+2)
	}
}
