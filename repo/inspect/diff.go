package inspect

import (
	"context"
	"errors"
	"path"
	"strings"

	"memento/chunk"
	"memento/repo"
)

// Kinds of Change, as restic's diff prints them.
const (
	Added    = "+" // in B only
	Removed  = "-" // in A only
	Modified = "M" // content (or link target) changed
	Metadata = "U" // same content, other mode, owner or mtime (a directory's mtime, which changes with every entry, is not compared)
)

// Change is one path that differs between two snapshots.
type Change struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
	Type string `json:"type"`           // the node's type in B (in A when removed)
	Size uint64 `json:"size"`           // in B (in A when removed)
	Old  uint64 `json:"old_size"`       // in A, for a modified file
	What string `json:"what,omitempty"` // for U: which metadata changed (mode, uid, gid, mtime)
}

// DiffStats counts a side of a diff.
type DiffStats struct {
	Files    uint64 `json:"files"`
	Dirs     uint64 `json:"dirs"`
	Symlinks uint64 `json:"symlinks"`
	Others   uint64 `json:"others,omitempty"` // nodes of other types
	Bytes    uint64 `json:"bytes"`            // of the files
}

func (d *DiffStats) add(n *repo.Node) {
	switch n.Type {
	case repo.NodeFile:
		d.Files++
		d.Bytes += n.Size
	case repo.NodeDir:
		d.Dirs++
	case repo.NodeSymlink:
		d.Symlinks++
	default:
		d.Others++
	}
}

// DiffSummary sums a diff: what B added and removed relative to A (a
// modified file counts once in Modified, its old and new size in the byte
// counts of Removed and Added), and how many paths changed only metadata.
type DiffSummary struct {
	Added        DiffStats `json:"added"`
	Removed      DiffStats `json:"removed"`
	Modified     uint64    `json:"modified"`
	MetadataOnly uint64    `json:"metadata_only"`
}

// Diff compares snapshot a with b path by path, in path order, and calls
// fn for every change; subtrees with the same ID (same content, metadata
// and names all the way down) are not read. It returns the summary.
func Diff(ctx context.Context, r Repository, a, b *repo.Snapshot, fn func(Change) error) (*DiffSummary, error) {
	d := &differ{ctx: ctx, r: r, a: a, b: b, fn: fn, sum: &DiffSummary{}}
	if err := d.trees(&a.Root, &b.Root, "/"); err != nil {
		return nil, err
	}
	return d.sum, nil
}

type differ struct {
	ctx  context.Context
	r    Repository
	a, b *repo.Snapshot
	fn   func(Change) error
	sum  *DiffSummary
}

// trees compares the directories at dir (nil: absent on that side).
func (d *differ) trees(ta, tb *chunk.ID, dir string) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	if ta != nil && tb != nil && *ta == *tb && repo.StorageSpace(d.a.Space) == repo.StorageSpace(d.b.Space) {
		return nil
	}
	var na, nb []*repo.Node
	if ta != nil {
		t, err := d.r.LoadTree(d.ctx, d.a.Space, *ta)
		if err != nil {
			return err
		}
		na = t.Nodes
	}
	if tb != nil {
		t, err := d.r.LoadTree(d.ctx, d.b.Space, *tb)
		if err != nil {
			return err
		}
		nb = t.Nodes
	}
	i, j := 0, 0
	for i < len(na) || j < len(nb) {
		var x, y *repo.Node
		switch {
		case j >= len(nb) || (i < len(na) && na[i].Name < nb[j].Name):
			x = na[i]
			i++
		case i >= len(na) || nb[j].Name < na[i].Name:
			y = nb[j]
			j++
		default:
			x, y = na[i], nb[j]
			i++
			j++
		}
		if err := d.node(x, y, dir); err != nil {
			return err
		}
	}
	return nil
}

// node compares one name of a directory (x in A, y in B; nil: absent).
func (d *differ) node(x, y *repo.Node, dir string) error {
	name := ""
	if x != nil {
		name = x.Name
	} else {
		name = y.Name
	}
	p := path.Join(dir, name)
	switch {
	case x == nil:
		return d.one(y, p, Added)
	case y == nil:
		return d.one(x, p, Removed)
	case x.Type != y.Type: // a file became a directory, ...: removed, then added
		if err := d.one(x, p, Removed); err != nil {
			return err
		}
		return d.one(y, p, Added)
	}
	var what []string
	if x.Mode != y.Mode {
		what = append(what, "mode")
	}
	if x.UID != y.UID {
		what = append(what, "uid")
	}
	if x.GID != y.GID {
		what = append(what, "gid")
	}
	if x.MTimeNS != y.MTimeNS && x.Type != repo.NodeDir {
		what = append(what, "mtime")
	}
	switch x.Type {
	case repo.NodeDir:
		if len(what) > 0 {
			if err := d.emit(Change{Path: p, Kind: Metadata, Type: y.Type, What: strings.Join(what, ",")}); err != nil {
				return err
			}
		}
		return d.trees(x.Subtree, y.Subtree, p)
	case repo.NodeFile:
		if x.Size != y.Size || !sameHash(x.BLAKE3, y.BLAKE3) {
			d.sum.Modified++
			d.sum.Removed.Bytes += x.Size
			d.sum.Added.Bytes += y.Size
			return d.fn(Change{Path: p, Kind: Modified, Type: y.Type, Size: y.Size, Old: x.Size})
		}
	case repo.NodeSymlink:
		if x.LinkTarget != y.LinkTarget {
			d.sum.Modified++
			return d.fn(Change{Path: p, Kind: Modified, Type: y.Type})
		}
	}
	if len(what) > 0 {
		return d.emit(Change{Path: p, Kind: Metadata, Type: y.Type, Size: y.Size, What: strings.Join(what, ",")})
	}
	return nil
}

func (d *differ) emit(c Change) error {
	d.sum.MetadataOnly++
	return d.fn(c)
}

func sameHash(a, b *repo.Hash) bool {
	return a != nil && b != nil && *a == *b
}

// one reports n at p, and everything below it, as added or removed.
func (d *differ) one(n *repo.Node, p, kind string) error {
	side, sn := &d.sum.Added, d.b
	if kind == Removed {
		side, sn = &d.sum.Removed, d.a
	}
	side.add(n)
	if err := d.fn(Change{Path: p, Kind: kind, Type: n.Type, Size: n.Size}); err != nil {
		return err
	}
	if n.Type != repo.NodeDir {
		return nil
	}
	return walkTree(d.ctx, d.r, sn.Space, *n.Subtree, p, func(q string, m *repo.Node) error {
		side.add(m)
		return d.fn(Change{Path: q, Kind: kind, Type: m.Type, Size: m.Size})
	})
}

// isNotFound reports whether err says a path is not in a snapshot.
func isNotFound(err error) bool { return errors.Is(err, repo.ErrNotFound) }
