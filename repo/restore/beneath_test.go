package restore

import (
	"context"
	"errors"
	"memento/repo"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRestoreRefusesSymlinkWhereSpaceDirMustBe (issue 19 item 5): a signed
// space snapshot with a symlink where Engram keeps a directory (the space
// dir, wal/, a tier) or a symlink in wal/ is refused as corrupt and unsafe,
// naming the snapshot and the path, before anything is written: the target
// is not created and the directory the symlink points to is untouched.
func TestRestoreRefusesSymlinkWhereSpaceDirMustBe(t *testing.T) {
	tr := newTestRepo(t, repo.InitOptions{})
	const sp = "s1"
	cases := map[string]struct {
		rel   string
		build func(c *crafter, outside string) *repo.Node // the space dir's node
	}{
		"space dir": {"spaces/s1", func(c *crafter, outside string) *repo.Node {
			return &repo.Node{Name: sp, Type: repo.NodeSymlink, LinkTarget: outside}
		}},
		"wal": {"spaces/s1/wal", func(c *crafter, outside string) *repo.Node {
			return c.dir(sp, c.file("checkpoint.json", []byte(`{}`)), &repo.Node{Name: "wal", Type: repo.NodeSymlink, LinkTarget: outside})
		}},
		"hot": {"spaces/s1/hot", func(c *crafter, outside string) *repo.Node {
			return c.dir(sp, &repo.Node{Name: "hot", Type: repo.NodeSymlink, LinkTarget: outside}, c.dir("wal"))
		}},
		"cold": {"spaces/s1/cold", func(c *crafter, outside string) *repo.Node {
			return c.dir(sp, &repo.Node{Name: "cold", Type: repo.NodeSymlink, LinkTarget: outside})
		}},
		"segment": {"spaces/s1/wal/wal-0000000000000002.log", func(c *crafter, outside string) *repo.Node {
			return c.dir(sp, c.dir("wal", c.file("wal-0000000000000001.log", nil),
				&repo.Node{Name: "wal-0000000000000002.log", Type: repo.NodeSymlink, LinkTarget: filepath.Join(outside, "seg")}))
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			outside := t.TempDir()
			writeFile(t, filepath.Join(outside, "seg"), []byte("live segment"), 0o644)
			want := digestTree(t, outside)
			c := newCrafter(t, tr, sp)
			root := c.tree(c.file("metadata.json", []byte(`{}`)), c.dir("spaces", tc.build(c, outside)))
			sn := c.snapshot(root)
			parent := t.TempDir()
			target := filepath.Join(parent, "dd")
			_, err := tr.Restore(context.Background(), sn, target, RestoreOptions{})
			if !errors.Is(err, repo.ErrCorrupt) || !errors.Is(err, repo.ErrUnsafePath) {
				t.Fatalf("restore: %v, want a corrupt, unsafe path", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "snapshot "+sn.ShortID()) || !strings.Contains(msg, tc.rel+" is a symlink to \""+outside) {
				t.Errorf("error %q does not name the snapshot and %s", msg, tc.rel)
			}
			if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused restore created its target: %v", err)
			}
			compareTrees(t, want, digestTree(t, outside))
		})
	}
}

// TestOpenDirBeneath: directories made and opened below a root never go
// through a symlink or a file, and never above the root.
func TestOpenDirBeneath(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "file"), nil, 0o644)
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
