package repotest

import (
	"context"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/repo"
)

// Crafter writes hand-made trees and data blobs through the storage core's
// own primitives (a Packer, EncodeTree, SaveIndex, SaveSnapshot), so a test
// can produce a validly sealed and signed snapshot whose content a real
// backup would never write (unsafe names, unsorted or inconsistent trees).
type Crafter struct {
	t      testing.TB
	r      *repo.Repository
	space  string
	key    chunk.Key
	packer *repo.Packer
}

// NewCrafter starts crafting a snapshot of space (empty: a paths snapshot).
func NewCrafter(t testing.TB, r *repo.Repository, space string) *Crafter {
	return &Crafter{t: t, r: r, space: space, key: r.ChunkKey(space), packer: r.NewPacker(context.Background(), space)}
}

// File returns a file node holding data, storing its one chunk.
func (c *Crafter) File(name string, data []byte) *repo.Node {
	c.t.Helper()
	h := repo.Hash(blake3.Sum256(data))
	n := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, Size: uint64(len(data)), BLAKE3: &h, MTimeNS: 1}
	if len(data) > 0 {
		id := c.key.Sum(data)
		if c.packer.Claim(id) {
			if err := c.packer.Add(repo.DataBlob, id, 0, len(data), data); err != nil {
				c.t.Fatal(err)
			}
		}
		n.Content = []chunk.ID{id}
	}
	return n
}

// Group returns file nodes holding files, stored as one compressed group
// blob and a member blob per file (Packer.AddGroup, format 6), in the
// pack being filled; names[i] names files[i]. It returns the group's ID.
func (c *Crafter) Group(names []string, files [][]byte) ([]*repo.Node, chunk.ID) {
	c.t.Helper()
	var plain []byte
	var members []repo.GroupMember
	var nodes []*repo.Node
	for i, f := range files {
		h := repo.Hash(blake3.Sum256(f))
		id := c.key.Sum(f)
		nodes = append(nodes, &repo.Node{Name: names[i], Type: repo.NodeFile, Mode: 0o644, Size: uint64(len(f)), BLAKE3: &h, MTimeNS: 1, Content: []chunk.ID{id}})
		if c.packer.Claim(id) {
			members = append(members, repo.GroupMember{ID: id, Offset: uint32(len(plain)), Length: uint32(len(f))})
			plain = append(plain, f...)
		}
	}
	gid := c.key.Sum(plain)
	stored, compressed := chunk.Compress(nil, plain, chunk.LevelFastest)
	var flags uint8
	if compressed {
		flags = repo.FlagCompressed
	} else {
		stored = plain
	}
	if err := c.packer.AddGroup(gid, flags, len(plain), stored, members); err != nil {
		c.t.Fatal(err)
	}
	return nodes, gid
}

// Dir stores a tree of nodes (in the order given: the test decides whether
// it is sorted) and returns a directory node pointing to it.
func (c *Crafter) Dir(name string, nodes ...*repo.Node) *repo.Node {
	c.t.Helper()
	id := c.Tree(nodes...)
	return &repo.Node{Name: name, Type: repo.NodeDir, Mode: 0o755, Subtree: &id, MTimeNS: 1}
}

// Tree stores a tree blob of nodes, as given, and returns its ID.
func (c *Crafter) Tree(nodes ...*repo.Node) chunk.ID {
	c.t.Helper()
	b, err := repo.EncodeTree(&repo.Tree{Nodes: nodes})
	if err != nil {
		c.t.Fatal(err)
	}
	id := c.key.Sum(b)
	if !c.packer.Claim(id) {
		return id
	}
	stored, compressed := chunk.Compress(nil, b, chunk.DefaultLevel)
	var flags uint8
	if compressed {
		flags = repo.FlagCompressed
	} else {
		stored = b
	}
	if err := c.packer.Add(repo.TreeBlob, id, flags, len(b), stored); err != nil {
		c.t.Fatal(err)
	}
	return id
}

// Snapshot finishes the packs, indexes them and writes a signed manifest
// with root.
func (c *Crafter) Snapshot(root chunk.ID) *repo.Snapshot {
	c.t.Helper()
	ctx := context.Background()
	packs, _, err := c.packer.Flush()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.r.SaveIndex(ctx, packs); err != nil {
		c.t.Fatal(err)
	}
	sn, err := c.r.SaveSnapshot(ctx, &repo.Manifest{Time: time.Now().UTC(), Host: "crafted", Space: c.space,
		Paths: []string{"/crafted"}, Root: root})
	if err != nil {
		c.t.Fatal(err)
	}
	return sn
}

// Forge stores data as the data blob id, in the pack being filled (before
// the chunks stored after it), sealed like any blob although data is not
// what id names: what a writer's bug or a holder of the keys could store.
// The AEAD accepts it; only the blob's keyed ID check and its files'
// BLAKE3 catch it. The Crafter then never stores id again (File, Chunks);
// Copy, after Snapshot, stores a true second copy.
func (c *Crafter) Forge(id chunk.ID, data []byte) {
	c.t.Helper()
	if !c.packer.Claim(id) {
		c.t.Fatalf("forge %s: stored already", id.Short())
	}
	if err := c.packer.Add(repo.DataBlob, id, 0, len(data), data); err != nil {
		c.t.Fatal(err)
	}
}

// Copy stores data under its ID in a pack of its own, indexed at once: a
// second copy of a chunk stored before (Snapshot indexes the Crafter's).
func (c *Crafter) Copy(data []byte) {
	c.t.Helper()
	ctx := context.Background()
	p := c.r.NewPacker(ctx, c.space)
	id := c.key.Sum(data)
	p.Claim(id)
	if err := p.Add(repo.DataBlob, id, 0, len(data), data); err != nil {
		c.t.Fatal(err)
	}
	packs, _, err := p.Flush()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.r.SaveIndex(ctx, packs); err != nil {
		c.t.Fatal(err)
	}
}

// Chunks returns a file node made of parts, one chunk each (stored as File
// does, unless forged), with the parts' size and BLAKE3.
func (c *Crafter) Chunks(name string, parts ...[]byte) *repo.Node {
	c.t.Helper()
	h := blake3.New()
	n := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, MTimeNS: 1}
	for _, part := range parts {
		h.Write(part)
		n.Size += uint64(len(part))
		n.Content = append(n.Content, c.File("", part).Content...)
	}
	var sum repo.Hash
	h.Sum(sum[:0])
	n.BLAKE3 = &sum
	return n
}
