package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// TestRestoreRefusesSymlinkWhereSpaceDirMustBe (issue 19 item 5): a signed
// space snapshot with a symlink where Engram keeps a directory (the space
// dir, wal/, a tier) or a symlink in wal/ is refused as corrupt and unsafe,
// naming the snapshot and the path, before anything is written: the target
// is not created and the directory the symlink points to is untouched.
func TestRestoreRefusesSymlinkWhereSpaceDirMustBe(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	const sp = "s1"
	cases := map[string]struct {
		rel   string
		build func(c *repotest.Crafter, outside string) *repo.Node // the space dir's node
	}{
		"space dir": {"spaces/s1", func(c *repotest.Crafter, outside string) *repo.Node {
			return &repo.Node{Name: sp, Type: repo.NodeSymlink, LinkTarget: outside}
		}},
		"wal": {"spaces/s1/wal", func(c *repotest.Crafter, outside string) *repo.Node {
			return c.Dir(sp, c.File("checkpoint.json", []byte(`{}`)), &repo.Node{Name: "wal", Type: repo.NodeSymlink, LinkTarget: outside})
		}},
		"hot": {"spaces/s1/hot", func(c *repotest.Crafter, outside string) *repo.Node {
			return c.Dir(sp, &repo.Node{Name: "hot", Type: repo.NodeSymlink, LinkTarget: outside}, c.Dir("wal"))
		}},
		"cold": {"spaces/s1/cold", func(c *repotest.Crafter, outside string) *repo.Node {
			return c.Dir(sp, &repo.Node{Name: "cold", Type: repo.NodeSymlink, LinkTarget: outside})
		}},
		"segment": {"spaces/s1/wal/wal-0000000000000002.log", func(c *repotest.Crafter, outside string) *repo.Node {
			return c.Dir(sp, c.Dir("wal", c.File("wal-0000000000000001.log", nil),
				&repo.Node{Name: "wal-0000000000000002.log", Type: repo.NodeSymlink, LinkTarget: filepath.Join(outside, "seg")}))
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			outside := t.TempDir()
			repotest.WriteFile(t, filepath.Join(outside, "seg"), []byte("live segment"), 0o644)
			want := repotest.DigestTree(t, outside)
			c := repotest.NewCrafter(t, tr.Repository, sp)
			root := c.Tree(c.File("metadata.json", []byte(`{}`)), c.Dir("spaces", tc.build(c, outside)))
			sn := c.Snapshot(root)
			parent := t.TempDir()
			target := filepath.Join(parent, "dd")
			_, err := restore.Restore(context.Background(), tr.Repository, sn, target, restore.RestoreOptions{})
			if !errors.Is(err, repo.ErrCorrupt) || !errors.Is(err, repo.ErrUnsafePath) {
				t.Fatalf("restore: %v, want a corrupt, unsafe path", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "snapshot "+sn.ShortID()) || !strings.Contains(msg, tc.rel+" is a symlink to \""+outside) {
				t.Errorf("error %q does not name the snapshot and %s", msg, tc.rel)
			}
			if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused restore created its target: %v", err)
			}
			repotest.CompareTrees(t, want, repotest.DigestTree(t, outside))
		})
	}
}
