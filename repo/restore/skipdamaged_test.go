package restore

import (
	"context"
	"errors"
	"fmt"
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

// TestSkipDamagedTree: with SkipDamaged, a directory whose tree cannot be
// read is left out whole and listed; everything else is restored and kept,
// and Restore returns a *PartialError (repo.ErrCorrupt).
func TestSkipDamagedTree(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "good", "g"), []byte("good"), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "bad", "b"), []byte("bad"), 0o644)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	bad := tr.NodeAt(t, sn, "src/bad")
	locs, err := tr.Locate("", []chunk.ID{*bad.Subtree})
	if err != nil || len(locs) != 1 {
		t.Fatalf("locate the tree of src/bad: %v %v", locs, err)
	}
	loc := locs[*bad.Subtree]
	h := fmt.Sprintf("%x", loc.Pack)
	repotest.FlipByte(t, filepath.Join(tr.Dir, "data", h[:2], h), int64(loc.Offset)+int64(loc.Length)/2)
	r := tr.Reopen(t)

	target := filepath.Join(t.TempDir(), "target")
	if _, err := Restore(context.Background(), r, sn, target, RestoreOptions{}); !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("restore without SkipDamaged: %v, want corruption", err)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Fatal("a failed restore left its target")
	}
	res, err := Restore(context.Background(), r, sn, target, RestoreOptions{SkipDamaged: true})
	var pe *PartialError
	if !errors.As(err, &pe) || !errors.Is(err, repo.ErrCorrupt) || res == nil {
		t.Fatalf("restore with SkipDamaged: %v", err)
	}
	if len(res.Damaged) != 1 || res.Damaged[0].Kind != "dir" || res.Damaged[0].Path != "src/bad" || res.Damaged[0].Chunk != bad.Subtree.String() {
		t.Fatalf("damaged: %+v", res.Damaged)
	}
	if got := names(t, filepath.Join(target, "src")); !slices.Equal(got, []string{"good"}) {
		t.Fatalf("restored src/ holds %q, want good only", got)
	}
	if b, err := os.ReadFile(filepath.Join(target, "src", "good", "g")); err != nil || string(b) != "good" {
		t.Fatalf("good file: %q %v", b, err)
	}
	if res.Files != 1 || res.Dirs != 2 {
		t.Errorf("counted %d files %d dirs, want 1 and 2", res.Files, res.Dirs)
	}
}
