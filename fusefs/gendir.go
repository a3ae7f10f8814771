package fusefs

import (
	"context"
	"slices"
	"sort"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// attrFiller is implemented by every node: it fills the node's attributes
// for Getattr and for the entry a Lookup returns.
type attrFiller interface {
	fillAttr(ctx context.Context, a *fuse.Attr)
}

// genEntry is one child of a generated directory.
type genEntry struct {
	name  string
	mode  uint32 // S_IFDIR, S_IFLNK or S_IFREG
	ino   uint64
	build func() fs.InodeEmbedder // the child's node; it implements attrFiller
}

// genDir is a directory whose entries are computed, not stored: the top
// level, snapshots/, spaces/<space>/, by-time/, hosts/<host>/ and so on. list
// returns the entries sorted by name from a catalog no older than maxAge.
// extra resolves names that are valid but never listed (at/<T>).
type genDir struct {
	fs.Inode
	readOnly
	f       *FS
	ino     uint64
	dynamic bool // entries follow the catalog: cache them only briefly
	static  []genEntry
	list    func(c *catalog) []genEntry
	extra   func(ctx context.Context, name string) (genEntry, syscall.Errno)
	// live, when set, lists entries that do not follow the catalog (the
	// timelines of a space, from its history records): computed on every
	// listing and lookup, after static.
	live func(ctx context.Context) []genEntry

	mu      sync.Mutex
	listed  *catalog // the catalog entries were built from
	entries []genEntry
}

// entries returns the directory's entries, sorted by name, built from a
// catalog no older than age; they are rebuilt only when the catalog changes,
// so a readdirplus of snapshots/ does not rebuild the list per entry.
func (d *genDir) entriesFor(age maxAge) []genEntry {
	if d.live != nil {
		return sortEntries(append(slices.Clone(d.static), d.live(d.f.ctx)...))
	}
	if d.list == nil {
		return d.static
	}
	c := d.f.age(age)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.listed != c {
		d.entries = sortEntries(d.list(c))
		d.listed = c
	}
	return d.entries
}

// maxAge says how old the catalog behind a listing may be.
type maxAge int

const (
	anyAge     maxAge = iota // whatever the catalog holds (lookups of listed names)
	listingAge               // Options.RefreshInterval (readdir)
	missAge                  // lookupRefresh (a name was not found)
)

func (f *FS) age(a maxAge) *catalog {
	switch a {
	case listingAge:
		return f.catalog(f.opts.RefreshInterval)
	case missAge:
		return f.catalog(lookupRefresh)
	}
	return f.catalog(1 << 62)
}

var (
	_ fs.NodeLookuper  = (*genDir)(nil)
	_ fs.NodeReaddirer = (*genDir)(nil)
	_ fs.NodeGetattrer = (*genDir)(nil)
	_ fs.NodeStatfser  = (*genDir)(nil)
)

func findEntry(es []genEntry, name string) (genEntry, bool) {
	i := sort.Search(len(es), func(i int) bool { return es[i].name >= name })
	if i < len(es) && es[i].name == name {
		return es[i], true
	}
	return genEntry{}, false
}

func (d *genDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	e, ok := findEntry(d.entriesFor(anyAge), name)
	if !ok && d.dynamic {
		e, ok = findEntry(d.entriesFor(missAge), name)
	}
	if !ok {
		if d.extra == nil {
			return nil, syscall.ENOENT
		}
		var errno syscall.Errno
		if e, errno = d.extra(ctx, name); errno != 0 {
			return nil, errno
		}
	}
	child := e.build()
	if af, ok := child.(attrFiller); ok {
		af.fillAttr(ctx, &out.Attr)
	}
	out.Attr.Ino = e.ino
	if d.dynamic || e.mode == syscall.S_IFLNK {
		out.SetEntryTimeout(dynamicTimeout)
		out.SetAttrTimeout(dynamicTimeout)
	}
	return d.NewInode(ctx, child, fs.StableAttr{Mode: e.mode, Ino: e.ino}), 0
}

func (d *genDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	es := d.entriesFor(listingAge)
	out := make([]fuse.DirEntry, len(es))
	for i, e := range es {
		out[i] = fuse.DirEntry{Name: e.name, Mode: e.mode, Ino: e.ino}
	}
	return fs.NewListDirStream(out), 0
}

func (d *genDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fillAttr(ctx, &out.Attr)
	if d.dynamic {
		out.SetTimeout(dynamicTimeout)
	}
	return 0
}

func (d *genDir) fillAttr(ctx context.Context, a *fuse.Attr) {
	a.Ino = d.ino
	a.Mode = syscall.S_IFDIR | 0o555
	a.Nlink = 2
	a.Size = 4096
	a.Blksize = 4096
	setTimes(a, d.f.started)
}

func (d *genDir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	d.f.statfs(out)
	return 0
}

// genLink is a generated symlink. Its target is computed on every readlink,
// because go-fuse keeps the first node made for an inode number and latest's
// target moves when a backup runs.
type genLink struct {
	fs.Inode
	readOnly
	f      *FS
	ino    uint64
	target func() string
}

var (
	_ fs.NodeReadlinker = (*genLink)(nil)
	_ fs.NodeGetattrer  = (*genLink)(nil)
)

func (l *genLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t := l.target()
	if t == "" {
		return nil, syscall.ENOENT
	}
	return []byte(t), 0
}

func (l *genLink) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	l.fillAttr(ctx, &out.Attr)
	out.SetTimeout(dynamicTimeout)
	return 0
}

func (l *genLink) fillAttr(ctx context.Context, a *fuse.Attr) {
	a.Ino = l.ino
	a.Mode = syscall.S_IFLNK | 0o777
	a.Nlink = 1
	a.Size = uint64(len(l.target()))
	setTimes(a, l.f.started)
}

func (f *FS) dirEntry(path, name string, dynamic bool, list func(c *catalog) []genEntry) genEntry {
	ino := inoFor("v", path)
	return genEntry{name: name, mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
		return &genDir{f: f, ino: ino, dynamic: dynamic, list: list}
	}}
}

func (f *FS) linkEntry(path, name string, target func() string) genEntry {
	ino := inoFor("v", path)
	return genEntry{name: name, mode: syscall.S_IFLNK, ino: ino, build: func() fs.InodeEmbedder {
		return &genLink{f: f, ino: ino, target: target}
	}}
}

func sortEntries(es []genEntry) []genEntry {
	sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	return es
}
