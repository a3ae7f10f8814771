package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The restore tests that craft snapshots through the backup's archiver
// (crafter, unsafe_test.go), which stay in package repo until the backup
// moves: they restore through RestoreBridge.

// TestRestoreRefusesSymlinkWhereSpaceDirMustBe (issue 19 item 5): a signed
// space snapshot with a symlink where Engram keeps a directory (the space
// dir, wal/, a tier) or a symlink in wal/ is refused as corrupt and unsafe,
// naming the snapshot and the path, before anything is written: the target
// is not created and the directory the symlink points to is untouched.
func TestRestoreRefusesSymlinkWhereSpaceDirMustBe(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	const sp = "s1"
	cases := map[string]struct {
		rel   string
		build func(c *crafter, outside string) *Node // the space dir's node
	}{
		"space dir": {"spaces/s1", func(c *crafter, outside string) *Node {
			return &Node{Name: sp, Type: NodeSymlink, LinkTarget: outside}
		}},
		"wal": {"spaces/s1/wal", func(c *crafter, outside string) *Node {
			return c.dir(sp, c.file("checkpoint.json", []byte(`{}`)), &Node{Name: "wal", Type: NodeSymlink, LinkTarget: outside})
		}},
		"hot": {"spaces/s1/hot", func(c *crafter, outside string) *Node {
			return c.dir(sp, &Node{Name: "hot", Type: NodeSymlink, LinkTarget: outside}, c.dir("wal"))
		}},
		"cold": {"spaces/s1/cold", func(c *crafter, outside string) *Node {
			return c.dir(sp, &Node{Name: "cold", Type: NodeSymlink, LinkTarget: outside})
		}},
		"segment": {"spaces/s1/wal/wal-0000000000000002.log", func(c *crafter, outside string) *Node {
			return c.dir(sp, c.dir("wal", c.file("wal-0000000000000001.log", nil),
				&Node{Name: "wal-0000000000000002.log", Type: NodeSymlink, LinkTarget: filepath.Join(outside, "seg")}))
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
			_, err := RestoreBridge(context.Background(), tr.Repository, sn, target, nil)
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrUnsafePath) {
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
