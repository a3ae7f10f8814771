package fusefs

import (
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/repo/pitr"
)

// A point in time recovered into a directory (PointInTime.Dir) is served
// as a read-only passthrough of that directory's real files. Its nodes do
// not hold the directory: each operation asks the mount's views for it
// (pitViews.acquire), so a view dropped from the bounded set while the
// kernel still caches its inodes is recovered again on its next use, and a
// view is never removed while an operation or an open file uses it.

// viewRef names one point-in-time view: what every node below at/<T>/ shares.
type viewRef struct {
	f     *FS
	key   string // the view's key in f.pits: database, space, timeline and instant
	sel   pitr.Select
	space string
	name  string // the directory name under at/, as looked up
	t     int64
	ns    string // inode namespace
}

// acquire returns the view's directory and a reference to release.
func (r *viewRef) acquire(ctx context.Context) (*pitView, syscall.Errno) {
	pv, err := r.f.pits.acquire(ctx, r.key, r.f.loadInstant(r.sel, r.t))
	if err == nil && pv.pit.Dir == "" {
		r.f.pits.release(pv)
		err = errors.New("the point in time was recovered again without a directory")
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil, syscall.EINTR
		}
		return nil, r.f.errno("point in time unavailable", err, "space", r.space, "at", r.name)
	}
	return pv, 0
}

// pending reports whether rel is one of the view's Lazy files not written yet.
func (r *viewRef) pending(pv *pitView, rel string) bool {
	for _, lf := range pv.pit.Lazy {
		if lf.Name == rel {
			_, done := pv.lazyDone.Load(rel)
			return !done
		}
	}
	return false
}

// ensure writes rel first if it is one of the view's Lazy files.
func (r *viewRef) ensure(pv *pitView, rel string) syscall.Errno {
	if !r.pending(pv, rel) {
		return 0
	}
	pv.lazyMu.Lock()
	defer pv.lazyMu.Unlock()
	if _, done := pv.lazyDone.Load(rel); done {
		return 0 // written while we waited
	}
	for _, lf := range pv.pit.Lazy {
		if lf.Name != rel {
			continue
		}
		start := time.Now()
		if err := lf.Write(r.f.ctx); err != nil {
			return r.f.errno("cannot write a point-in-time file", err, "space", r.space, "at", r.name, "file", rel)
		}
		pv.lazyDone.Store(rel, true)
		r.f.log.Debug("point-in-time file written", "space", r.space, "at", r.name, "file", rel, "seconds", time.Since(start).Seconds())
		break
	}
	return 0
}

func (r *viewRef) path(pv *pitView, rel string) string {
	return filepath.Join(pv.pit.Dir, filepath.FromSlash(rel))
}

// ioErrno turns a failed system call on a view's file into an errno,
// logging what is not a plain "not there".
func (r *viewRef) ioErrno(op, rel string, err error) syscall.Errno {
	if errors.Is(err, iofs.ErrNotExist) {
		return syscall.ENOENT
	}
	return r.f.errno(op+" failed", err, "space", r.space, "at", r.name, "file", rel)
}

// pitAttr fills a from the real file's lstat, with the view's stable inode.
func pitAttr(a *fuse.Attr, ino uint64, fi iofs.FileInfo) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		a.FromStat(st)
	} else {
		*a = *fuse.ToAttr(fi)
	}
	a.Ino = ino
	a.Nlink = 1
	if fi.IsDir() {
		a.Nlink = 2
	}
}

// fileType returns the S_IFMT bits of a file mode.
func fileType(m iofs.FileMode) uint32 {
	switch m.Type() {
	case iofs.ModeDir:
		return syscall.S_IFDIR
	case iofs.ModeSymlink:
		return syscall.S_IFLNK
	}
	return syscall.S_IFREG
}

func childRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// pitDir is a directory of a recovered point in time; rel "" is at/<T>/.
type pitDir struct {
	fs.Inode
	readOnly
	v   *viewRef
	ino uint64
	rel string
}

var (
	_ fs.NodeLookuper       = (*pitDir)(nil)
	_ fs.NodeOpendirHandler = (*pitDir)(nil)
	_ fs.NodeGetattrer      = (*pitDir)(nil)
	_ fs.NodeStatfser       = (*pitDir)(nil)
)

func (d *pitDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return d.lookup(ctx, name, out, false)
}

// lookup looks name up; listing says the lookup is part of a listing
// (readdirplus), which the kernel makes for every entry of a directory
// listed: a Lazy file is then not written, and the listing gives no
// attributes for it (a placeholder's size 0 and mode would be what a stat
// sees until they expire), so its first stat or open looks it up for real,
// which writes it: the view's files show their real size and mode.
func (d *pitDir) lookup(ctx context.Context, name string, out *fuse.EntryOut, listing bool) (*fs.Inode, syscall.Errno) {
	pv, errno := d.v.acquire(ctx)
	if errno != 0 {
		return nil, errno
	}
	defer d.v.f.pits.release(pv)
	rel := childRel(d.rel, name)
	ino := inoFor(d.v.ns, "/"+rel)
	if listing && d.v.pending(pv, rel) {
		// An error here leaves the entry without a node ID: the kernel
		// keeps the name and nothing else (fuse_direntplus_link).
		return nil, syscall.EAGAIN
	}
	if errno := d.v.ensure(pv, rel); errno != 0 {
		return nil, errno
	}
	fi, err := os.Lstat(d.v.path(pv, rel))
	if err != nil {
		return nil, d.v.ioErrno("lookup", rel, err)
	}
	typ := fileType(fi.Mode())
	var child fs.InodeEmbedder
	switch typ {
	case syscall.S_IFDIR:
		child = &pitDir{v: d.v, ino: ino, rel: rel}
	case syscall.S_IFLNK:
		child = &pitLink{v: d.v, ino: ino, rel: rel}
	default:
		if !fi.Mode().IsRegular() {
			return nil, syscall.ENOENT // restore writes no devices, fifos or sockets
		}
		child = &pitFile{v: d.v, ino: ino, rel: rel}
	}
	pitAttr(&out.Attr, ino, fi)
	return d.NewInode(ctx, child, fs.StableAttr{Mode: typ, Ino: ino}), 0
}

// dirLister is what go-fuse's listing of a []fuse.DirEntry does.
type dirLister interface {
	fs.FileReaddirenter
	fs.FileSeekdirer
	fs.FileReleasedirer
}

// pitListing is an open directory of a view: its entries, read at opendir,
// and the lookups of a readdirplus, told apart from the kernel's own.
type pitListing struct {
	dirLister
	d *pitDir
}

var _ fs.FileLookuper = (*pitListing)(nil)

func (l *pitListing) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return l.d.lookup(ctx, name, out, true)
}

// OpendirHandle lists the directory, the view's Lazy files included at its
// top whether written or not.
func (d *pitDir) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	pv, errno := d.v.acquire(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	defer d.v.f.pits.release(pv)
	es, err := os.ReadDir(d.v.path(pv, d.rel))
	if err != nil {
		return nil, 0, d.v.ioErrno("readdir", d.rel, err)
	}
	out := make([]fuse.DirEntry, 0, len(es))
	for _, e := range es {
		if t := e.Type(); t != 0 && t != iofs.ModeDir && t != iofs.ModeSymlink {
			continue
		}
		out = append(out, fuse.DirEntry{Name: e.Name(), Mode: fileType(e.Type()), Ino: inoFor(d.v.ns, "/"+childRel(d.rel, e.Name()))})
	}
	if d.rel == "" {
		for _, lf := range pv.pit.Lazy {
			if !slices.ContainsFunc(es, func(e iofs.DirEntry) bool { return e.Name() == lf.Name }) {
				out = append(out, fuse.DirEntry{Name: lf.Name, Mode: syscall.S_IFREG, Ino: inoFor(d.v.ns, "/"+lf.Name)})
			}
		}
		slices.SortFunc(out, func(a, b fuse.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	}
	ds, ok := fs.NewListDirStream(out).(dirLister)
	if !ok {
		return nil, 0, d.v.f.errno("cannot list", errors.New("go-fuse's list stream is not a directory handle"), "space", d.v.space, "at", d.v.name)
	}
	return &pitListing{dirLister: ds, d: d}, 0, 0
}

func (d *pitDir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return lstatAttr(ctx, d.v, d.rel, d.ino, &out.Attr)
}

func (d *pitDir) fillAttr(ctx context.Context, a *fuse.Attr) {
	if lstatAttr(ctx, d.v, d.rel, d.ino, a) != 0 {
		a.Ino, a.Mode, a.Nlink = d.ino, syscall.S_IFDIR|0o555, 2
	}
}

func (d *pitDir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	d.v.f.statfs(out)
	return 0
}

// lstatAttr fills a with the attributes of rel in the view.
func lstatAttr(ctx context.Context, v *viewRef, rel string, ino uint64, a *fuse.Attr) syscall.Errno {
	pv, errno := v.acquire(ctx)
	if errno != 0 {
		return errno
	}
	defer v.f.pits.release(pv)
	if errno := v.ensure(pv, rel); errno != 0 {
		return errno
	}
	fi, err := os.Lstat(v.path(pv, rel))
	if err != nil {
		return v.ioErrno("stat", rel, err)
	}
	pitAttr(a, ino, fi)
	return 0
}

// pitLink is a symlink of a recovered point in time.
type pitLink struct {
	fs.Inode
	readOnly
	v   *viewRef
	ino uint64
	rel string
}

var (
	_ fs.NodeReadlinker = (*pitLink)(nil)
	_ fs.NodeGetattrer  = (*pitLink)(nil)
)

func (l *pitLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	pv, errno := l.v.acquire(ctx)
	if errno != 0 {
		return nil, errno
	}
	defer l.v.f.pits.release(pv)
	target, err := os.Readlink(l.v.path(pv, l.rel))
	if err != nil {
		return nil, l.v.ioErrno("readlink", l.rel, err)
	}
	return []byte(target), 0
}

func (l *pitLink) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return lstatAttr(ctx, l.v, l.rel, l.ino, &out.Attr)
}

// pitFile is a regular file of a recovered point in time.
type pitFile struct {
	fs.Inode
	readOnly
	v   *viewRef
	ino uint64
	rel string
}

var (
	_ fs.NodeOpener    = (*pitFile)(nil)
	_ fs.NodeGetattrer = (*pitFile)(nil)
	_ fs.NodeStatfser  = (*pitFile)(nil)
)

func (n *pitFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return lstatAttr(ctx, n.v, n.rel, n.ino, &out.Attr)
}

func (n *pitFile) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	n.v.f.statfs(out)
	return 0
}

// Open keeps a reference to the view until the file is released, so the
// view is not dropped (its directory removed) while the file is read.
func (n *pitFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if wantsWrite(flags) {
		return nil, 0, syscall.EROFS
	}
	pv, errno := n.v.acquire(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	if errno := n.v.ensure(pv, n.rel); errno != 0 {
		n.v.f.pits.release(pv)
		return nil, 0, errno
	}
	fd, err := os.OpenFile(n.v.path(pv, n.rel), os.O_RDONLY|syscall.O_NOFOLLOW, 0) // a view never serves through a symlink
	if err != nil {
		n.v.f.pits.release(pv)
		return nil, 0, n.v.ioErrno("open", n.rel, err)
	}
	// A view's files never change while it exists, and a view recovered
	// again holds the same bytes: the kernel may keep its pages.
	return &pitHandle{n: n, pv: pv, fd: fd}, fuse.FOPEN_KEEP_CACHE, 0
}

// pitHandle is one open of a view's file.
type pitHandle struct {
	n  *pitFile
	pv *pitView
	fd *os.File
}

var (
	_ fs.FileReader   = (*pitHandle)(nil)
	_ fs.FileWriter   = (*pitHandle)(nil)
	_ fs.FileReleaser = (*pitHandle)(nil)
)

func (h *pitHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off < 0 {
		return nil, syscall.EINVAL
	}
	n, err := h.fd.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, h.n.v.ioErrno("read", h.n.rel, err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *pitHandle) Write(context.Context, []byte, int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

func (h *pitHandle) Release(ctx context.Context) syscall.Errno {
	h.fd.Close()
	h.n.v.f.pits.release(h.pv)
	return 0
}
