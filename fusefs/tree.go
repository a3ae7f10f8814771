package fusefs

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/chunk"
	"memento/repo"
)

// snapRef is what every node below a snapshot shares: the names for log
// lines and inode numbers, and the verified root tree.
type snapRef struct {
	f     *FS
	id    chunk.ID  // the snapshot; zero for a generated view (at/<T>)
	ns    string    // inode namespace; the snapshot ID unless set
	name  string    // as shown in logs: the snapshot's short ID, or space@T
	space string    // whose chunk key the blobs use
	time  time.Time // mtime of the root directory

	extras []genEntry // generated files at the root (at/<T>/memories.jsonl)

	mu   sync.Mutex
	root *chunk.ID // verified root tree, once known
}

func (s *snapRef) namespace() string {
	if s.ns != "" {
		return s.ns
	}
	return s.id.String()
}

// rootTree returns the snapshot's root tree ID, from its verified manifest.
func (s *snapRef) rootTree(ctx context.Context) (chunk.ID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.root != nil {
		return *s.root, nil
	}
	sn, err := s.f.verifiedSnapshot(ctx, s.id)
	if err != nil {
		return chunk.ID{}, err
	}
	s.root = &sn.Root
	return sn.Root, nil
}

// treeDir is a directory inside a snapshot.
type treeDir struct {
	fs.Inode
	readOnly
	f    *FS
	snap *snapRef
	ino  uint64
	path string     // inside the snapshot, "/" for its root
	node *repo.Node // nil for the root
}

var (
	_ fs.NodeLookuper  = (*treeDir)(nil)
	_ fs.NodeReaddirer = (*treeDir)(nil)
	_ fs.NodeGetattrer = (*treeDir)(nil)
	_ fs.NodeStatfser  = (*treeDir)(nil)
)

func (d *treeDir) tree(ctx context.Context) (*repo.Tree, syscall.Errno) {
	var id chunk.ID
	if d.node == nil {
		var err error
		if id, err = d.snap.rootTree(ctx); err != nil {
			return nil, d.f.errno("cannot read snapshot", err, "snapshot", d.snap.name)
		}
	} else {
		id = *d.node.Subtree
	}
	t, err := d.f.loadTree(ctx, d.snap.space, id)
	if err != nil {
		return nil, d.f.errno("cannot read directory", err, "snapshot", d.snap.name, "dir", d.path, "tree", id.Short())
	}
	return t, 0
}

func (d *treeDir) childPath(name string) string {
	if d.path == "/" {
		return "/" + name
	}
	return d.path + "/" + name
}

func (d *treeDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.path == "/" {
		if e, ok := findEntry(d.snap.extras, name); ok {
			child := e.build()
			child.(attrFiller).fillAttr(ctx, &out.Attr)
			return d.NewInode(ctx, child, fs.StableAttr{Mode: e.mode, Ino: e.ino}), 0
		}
	}
	t, errno := d.tree(ctx)
	if errno != 0 {
		return nil, errno
	}
	n := t.Find(name)
	if n == nil {
		return nil, syscall.ENOENT
	}
	p := d.childPath(name)
	ino := nodeIno(d.snap.namespace(), p, n)
	var child fs.InodeEmbedder
	switch n.Type {
	case repo.NodeDir:
		child = &treeDir{f: d.f, snap: d.snap, ino: ino, path: p, node: n}
	case repo.NodeSymlink:
		child = &treeLink{ino: ino, node: n}
	case repo.NodeFIFO, repo.NodeSocket, repo.NodeCharDev, repo.NodeBlockDev:
		child = &treeLink{ino: ino, node: n} // attributes only: the mount is nodev, and nothing listens
	default:
		child = &fileNode{f: d.f, snap: d.snap, ino: ino, path: p, node: n}
	}
	fillNodeAttr(&out.Attr, ino, n)
	return d.NewInode(ctx, child, fs.StableAttr{Mode: typeBits(n), Ino: ino}), 0
}

func (d *treeDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	t, errno := d.tree(ctx)
	if errno != 0 {
		return nil, errno
	}
	ns := d.snap.namespace()
	out := make([]fuse.DirEntry, len(t.Nodes))
	for i, n := range t.Nodes {
		out[i] = fuse.DirEntry{Name: n.Name, Mode: typeBits(n), Ino: nodeIno(ns, d.childPath(n.Name), n)}
	}
	if d.path == "/" {
		for _, e := range d.snap.extras {
			if t.Find(e.name) == nil {
				out = append(out, fuse.DirEntry{Name: e.name, Mode: e.mode, Ino: e.ino})
			}
		}
	}
	return fs.NewListDirStream(out), 0
}

func (d *treeDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fillAttr(ctx, &out.Attr)
	return 0
}

func (d *treeDir) fillAttr(ctx context.Context, a *fuse.Attr) {
	if d.node != nil {
		fillNodeAttr(a, d.ino, d.node)
		return
	}
	// The root has no node of its own; restore creates it 0755.
	a.Ino = d.ino
	a.Mode = syscall.S_IFDIR | 0o755
	a.Nlink = 1
	a.Size = 4096
	a.Blksize = 4096
	setTimes(a, d.snap.time)
}

func (d *treeDir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	d.f.statfs(out)
	return 0
}

// treeLink is a symlink inside a snapshot, or a FIFO, socket or device
// node (which have attributes only).
type treeLink struct {
	fs.Inode
	readOnly
	ino  uint64
	node *repo.Node
}

var (
	_ fs.NodeReadlinker = (*treeLink)(nil)
	_ fs.NodeGetattrer  = (*treeLink)(nil)
)

func (l *treeLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(l.node.LinkTarget), 0
}

func (l *treeLink) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	l.fillAttr(ctx, &out.Attr)
	return 0
}

func (l *treeLink) fillAttr(ctx context.Context, a *fuse.Attr) { fillNodeAttr(a, l.ino, l.node) }
