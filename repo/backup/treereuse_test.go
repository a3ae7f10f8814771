package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// nodeAt walks rel (names) from a snapshot's root and returns the node
// found there.
func nodeAt(t *testing.T, r *repo.Repository, root chunk.ID, names ...string) *repo.Node {
	t.Helper()
	id := root
	var n *repo.Node
	for _, name := range names {
		tree, err := r.LoadTree(context.Background(), "", id)
		if err != nil {
			t.Fatal(err)
		}
		if n = tree.Find(name); n == nil {
			t.Fatalf("no %s in tree %s", name, id.Short())
		}
		if n.Subtree != nil {
			id = *n.Subtree
		}
	}
	return n
}

// TestUnchangedDirectoriesKeepTheirTrees: an unchanged directory keeps the
// parent's tree (the same subtree ID), and a change that reads no file (a
// mode changed on a file, on a directory) still gives the directories above
// it new trees holding the new mode (f1, whose ctime changed, is read
// again and gives the same chunks).
func TestUnchangedDirectoriesKeepTheirTrees(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	for _, f := range []string{"a/b/f1", "a/c/f2", "d/f3"} {
		repotest.WriteFile(t, filepath.Join(src, f), []byte("content of "+f), 0o644)
	}
	tr := repotest.New(t, repo.InitOptions{})
	opts := backup.BackupOptions{Paths: []string{src}}
	first := backuptest.Backup(t, tr.Repository, opts)
	r := tr.Reopen(t)
	second := backuptest.Backup(t, r, opts)
	if second.Root != first.Root || second.Summary.UnchangedFiles != 3 {
		t.Fatalf("unchanged backup: root %s (parent %s), %d unchanged files", second.Root.Short(), first.Root.Short(), second.Summary.UnchangedFiles)
	}
	if err := os.Chmod(filepath.Join(src, "a/b/f1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "a/c"), 0o700); err != nil {
		t.Fatal(err)
	}
	r = tr.Reopen(t)
	third := backuptest.Backup(t, r, opts)
	if third.Root == first.Root || third.Summary.UnchangedFiles != 2 || third.Summary.NewChunks != 0 {
		t.Fatalf("third backup: root %s (parent %s), %d unchanged files, %d new chunks", third.Root.Short(), first.Root.Short(), third.Summary.UnchangedFiles, third.Summary.NewChunks)
	}
	if got, want := *nodeAt(t, r, third.Root, "src", "d").Subtree, *nodeAt(t, r, first.Root, "src", "d").Subtree; got != want {
		t.Errorf("unchanged directory d: subtree %s, parent's %s", got.Short(), want.Short())
	}
	for _, c := range []struct {
		path []string
		mode uint32
	}{{[]string{"src", "a", "b", "f1"}, 0o600}, {[]string{"src", "a", "c"}, 0o700}} {
		if n := nodeAt(t, r, third.Root, c.path...); n.Mode != c.mode {
			t.Errorf("%v: mode %o, want %o", c.path, n.Mode, c.mode)
		}
	}
	if a, b := nodeAt(t, r, third.Root, "src", "a", "b", "f1"), nodeAt(t, r, first.Root, "src", "a", "b", "f1"); !slices.Equal(a.Content, b.Content) {
		t.Errorf("f1: content %v, parent's %v", a.Content, b.Content)
	}
}
