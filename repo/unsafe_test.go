package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"memento/chunk"
)

// crafter writes hand-made trees and data blobs through the same code paths a
// backup uses (archiver.saveTree, storeChunk, packer, saveIndex,
// saveSnapshot), so a test can produce a validly sealed and signed snapshot
// whose content a real backup would never write.
type crafter struct {
	t  *testing.T
	tr *testRepo
	a  *archiver
}

func newCrafter(t *testing.T, tr *testRepo, space string) *crafter {
	ctx := context.Background()
	return &crafter{t: t, tr: tr, a: &archiver{r: tr.Repository, space: space, key: tr.ChunkKey(space),
		known: map[chunk.ID]struct{}{}, prog: &Progress{}, packer: tr.NewPacker(ctx, space)}}
}

// file returns a file node holding data, storing its one chunk.
func (c *crafter) file(name string, data []byte) *Node {
	c.t.Helper()
	h := Hash(blake3.Sum256(data))
	n := &Node{Name: name, Type: NodeFile, Mode: 0o644, Size: uint64(len(data)), BLAKE3: &h, MTimeNS: 1}
	if len(data) > 0 {
		id := c.a.key.Sum(data)
		if err := c.a.storeChunk(&chunk.Chunk{ID: id, Raw: data, Stored: data}); err != nil {
			c.t.Fatal(err)
		}
		n.Content = []chunk.ID{id}
	}
	return n
}

// dir stores a tree of nodes (in the order given: the test decides whether it
// is sorted) and returns a directory node pointing to it.
func (c *crafter) dir(name string, nodes ...*Node) *Node {
	c.t.Helper()
	id := c.tree(nodes...)
	return &Node{Name: name, Type: NodeDir, Mode: 0o755, Subtree: &id, MTimeNS: 1}
}

func (c *crafter) tree(nodes ...*Node) chunk.ID {
	c.t.Helper()
	id, err := c.a.saveTree(&Tree{Nodes: nodes})
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// snapshot finishes the packs and writes a signed manifest with root.
func (c *crafter) snapshot(root chunk.ID) *Snapshot {
	c.t.Helper()
	ctx := context.Background()
	packs, _, err := c.a.packer.Flush()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.tr.SaveIndex(ctx, packs); err != nil {
		c.t.Fatal(err)
	}
	sn, err := c.tr.SaveSnapshot(ctx, &Manifest{Time: time.Now().UTC(), Host: "crafted", Space: c.a.space,
		Paths: []string{"/crafted"}, Root: root})
	if err != nil {
		c.t.Fatal(err)
	}
	return sn
}

// TestRestoreRefusesUnsafeNames: a tree entry whose name could step outside
// the target is refused with ErrUnsafePath, and nothing at all is written, at
// the root or deep inside the snapshot.
func TestRestoreRefusesUnsafeNames(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	for _, name := range []string{"../x", "..", ".", "", "/etc/passwd", "a/../../x", "x\x00y", "sub/x"} {
		for _, deep := range []bool{false, true} {
			c := newCrafter(t, tr, "")
			evil := c.file(name, []byte("escaped\n"))
			var root chunk.ID
			if deep {
				// Good content first, so the restore is well under way when it meets the bad name.
				inner := c.dir("inner", c.file("a-good", []byte("good")), evil)
				root = c.tree(c.file("0-first", []byte("first")), c.dir("d", inner))
			} else {
				root = c.tree(evil, c.file("good", []byte("good")))
			}
			sn := c.snapshot(root)

			parent := t.TempDir()
			target := filepath.Join(parent, "t", "target")
			_, err := RestoreBridge(context.Background(), tr.Repository, sn, target, nil)
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("name %q deep=%v: restore error %v, want ErrUnsafePath", name, deep, err)
			}
			if !errors.Is(err, ErrCorrupt) {
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
	tr := newTestRepo(t, InitOptions{})
	cases := map[string]func(c *crafter) chunk.ID{
		"duplicate": func(c *crafter) chunk.ID {
			link := &Node{Name: "d", Type: NodeSymlink, LinkTarget: "/tmp"}
			return c.tree(link, c.dir("d", c.file("f", []byte("through the link"))))
		},
		"unsorted": func(c *crafter) chunk.ID { return c.tree(c.file("b", nil), c.file("a", nil)) },
		"file without BLAKE3": func(c *crafter) chunk.ID {
			n := c.file("f", []byte("x"))
			n.BLAKE3 = nil
			return c.tree(n)
		},
		"wrong BLAKE3": func(c *crafter) chunk.ID {
			n := c.file("f", []byte("x"))
			h := Hash(blake3.Sum256([]byte("y")))
			n.BLAKE3 = &h
			return c.tree(n)
		},
		"wrong size": func(c *crafter) chunk.ID {
			n := c.file("f", []byte("xyz"))
			n.Size = 2
			return c.tree(n)
		},
		"dir without subtree": func(c *crafter) chunk.ID {
			return c.tree(&Node{Name: "d", Type: NodeDir})
		},
		"unknown type": func(c *crafter) chunk.ID {
			return c.tree(&Node{Name: "dev", Type: "chardev"})
		},
		"missing chunk": func(c *crafter) chunk.ID {
			n := c.file("f", nil)
			n.Size, n.Content = 1, []chunk.ID{{1, 2, 3}}
			return c.tree(n)
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			c := newCrafter(t, tr, "")
			sn := c.snapshot(build(c))
			parent := t.TempDir()
			target := filepath.Join(parent, "target")
			_, err := RestoreBridge(context.Background(), tr.Repository, sn, target, nil)
			if err == nil {
				t.Fatal("restore of a malformed tree succeeded")
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
				t.Errorf("restore error %v is neither corrupt nor not-found", err)
			}
			if _, serr := os.Lstat(target); serr == nil {
				t.Error("target was created")
			}
			noTempLeft(t, parent)
		})
	}
}
