package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// The restore-safety tests craft snapshots a backup would never write
// (repotest.Crafter: validly sealed and signed, hostile content) and restore
// them.

// TestRestoreRefusesUnsafeNames: a tree entry whose name could step outside
// the target is refused with ErrUnsafePath, and nothing at all is written, at
// the root or deep inside the snapshot.
func TestRestoreRefusesUnsafeNames(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	for _, name := range []string{"../x", "..", ".", "", "/etc/passwd", "a/../../x", "x\x00y", "sub/x"} {
		for _, deep := range []bool{false, true} {
			c := repotest.NewCrafter(t, tr.Repository, "")
			evil := c.File(name, []byte("escaped\n"))
			var root chunk.ID
			if deep {
				// Good content first, so the restore is well under way when it meets the bad name.
				inner := c.Dir("inner", c.File("a-good", []byte("good")), evil)
				root = c.Tree(c.File("0-first", []byte("first")), c.Dir("d", inner))
			} else {
				root = c.Tree(evil, c.File("good", []byte("good")))
			}
			sn := c.Snapshot(root)

			parent := t.TempDir()
			target := filepath.Join(parent, "t", "target")
			_, err := restore.Restore(context.Background(), tr.Repository, sn, target, restore.RestoreOptions{})
			if !errors.Is(err, repo.ErrUnsafePath) {
				t.Fatalf("name %q deep=%v: restore error %v, want ErrUnsafePath", name, deep, err)
			}
			if !errors.Is(err, repo.ErrCorrupt) {
				t.Errorf("name %q: a tree with an unsafe name should also count as corrupt: %v", name, err)
			}
			// Nothing written: not the target, not a temporary, not the escaped file.
			var left []string
			_ = filepath.Walk(parent, func(p string, fi os.FileInfo, err error) error {
				if p != parent && err == nil && p != filepath.Join(parent, "t") {
					left = append(left, strings.TrimPrefix(p, parent))
				}
				return nil
			})
			if len(left) > 0 {
				t.Errorf("name %q deep=%v: restore left %q", name, deep, left)
			}
			if _, err := os.Lstat(filepath.Join(parent, "x")); err == nil {
				t.Fatalf("name %q: a file escaped the target", name)
			}
		}
	}
}

// TestRestoreRefusesMalformedTrees: duplicate or unsorted names (which could
// make two entries share a path, e.g. a symlink and a directory through it) and
// inconsistent nodes are refused.
func TestRestoreRefusesMalformedTrees(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	cases := map[string]func(c *repotest.Crafter) chunk.ID{
		"duplicate": func(c *repotest.Crafter) chunk.ID {
			link := &repo.Node{Name: "d", Type: repo.NodeSymlink, LinkTarget: "/tmp"}
			return c.Tree(link, c.Dir("d", c.File("f", []byte("through the link"))))
		},
		"unsorted": func(c *repotest.Crafter) chunk.ID { return c.Tree(c.File("b", nil), c.File("a", nil)) },
		"file without BLAKE3": func(c *repotest.Crafter) chunk.ID {
			n := c.File("f", []byte("x"))
			n.BLAKE3 = nil
			return c.Tree(n)
		},
		"wrong BLAKE3": func(c *repotest.Crafter) chunk.ID {
			n := c.File("f", []byte("x"))
			h := repo.Hash(blake3.Sum256([]byte("y")))
			n.BLAKE3 = &h
			return c.Tree(n)
		},
		"wrong size": func(c *repotest.Crafter) chunk.ID {
			n := c.File("f", []byte("xyz"))
			n.Size = 2
			return c.Tree(n)
		},
		"dir without subtree": func(c *repotest.Crafter) chunk.ID {
			return c.Tree(&repo.Node{Name: "d", Type: repo.NodeDir})
		},
		"unknown type": func(c *repotest.Crafter) chunk.ID {
			return c.Tree(&repo.Node{Name: "door", Type: "door"})
		},
		"missing chunk": func(c *repotest.Crafter) chunk.ID {
			n := c.File("f", nil)
			n.Size, n.Content = 1, []chunk.ID{{1, 2, 3}}
			return c.Tree(n)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			c := repotest.NewCrafter(t, tr.Repository, "")
			sn := c.Snapshot(build(c))
			parent := t.TempDir()
			target := filepath.Join(parent, "target")
			_, err := restore.Restore(context.Background(), tr.Repository, sn, target, restore.RestoreOptions{})
			if err == nil {
				t.Fatal("restore of a malformed tree succeeded")
			}
			if !errors.Is(err, repo.ErrCorrupt) && !errors.Is(err, repo.ErrNotFound) {
				t.Errorf("restore error %v is neither corrupt nor not-found", err)
			}
			if _, serr := os.Lstat(target); serr == nil {
				t.Error("target was created")
			}
			repotest.NoTempLeft(t, parent)
		})
	}
}
