package restore

import (
	"errors"
	"memento/repo"
	"memento/repo/repotest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpenDirBeneath: directories made and opened below a root never go
// through a symlink or a file, and never above the root.
func TestOpenDirBeneath(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	repotest.WriteFile(t, filepath.Join(root, "file"), nil, 0o644)
	if err := mkdirBeneath(root, "a/b/c", 0o750); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "a", "b", "c")); err != nil || fi.Mode() != os.ModeDir|0o750 {
		t.Errorf("a/b/c: %v, %v", fi, err)
	}
	if err := mkdirBeneath(root, "a/b/c", 0o750); err != nil {
		t.Errorf("an existing directory: %v", err)
	}
	for rel, want := range map[string]error{"link": syscall.ELOOP, "link/x": syscall.ELOOP, "file/x": syscall.ENOTDIR,
		"../x": repo.ErrUnsafePath, "a/../../x": repo.ErrUnsafePath, "a//b": repo.ErrUnsafePath} {
		err := mkdirBeneath(root, rel, 0o755)
		if want == syscall.ELOOP && errors.Is(err, syscall.ENOTDIR) {
			continue // O_NOFOLLOW|O_DIRECTORY on a symlink: ENOTDIR
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", rel, err, want)
		}
	}
	if es, err := os.ReadDir(outside); err != nil || len(es) != 0 {
		t.Errorf("something was made through the symlink: %v %v", es, err)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(root), "x")); err == nil {
		t.Error("something was made above the root")
	}
}
