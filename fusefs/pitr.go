package fusefs

import (
	"context"
	"errors"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/chunk"
	"memento/repo"
	"memento/repo/pitr"
)

// PointInTime is a space as recovered at one instant, served under
// spaces/<space>/at/<T>/. It is either a directory on disk the recovery
// wrote (Dir) or a tree of the repository (Tree) with generated files.
type PointInTime struct {
	// Dir, when set, is a directory the recovery restored into, laid out as
	// an Engram data dir (metadata.json, spaces/<space>/...) plus any files
	// the recovery generated (memories.jsonl, ...). It is served read-only
	// as it is, and Base, Tree and Files are ignored. The mount owns it until
	// Close: nothing else may change it.
	Dir string
	// Close, when set, is called once the view is dropped: when more than
	// Options.PointInTimeViews instants are materialized and nothing uses
	// this one (no open file, no operation in flight), and at unmount. It
	// typically removes Dir. A dropped view looked at again is recovered
	// again.
	Close func() error
	// Lazy are files of Dir written on first use rather than by the
	// recovery: memories.jsonl can be as large as the space and take longer
	// to produce than the restore, and most looks at a view never read it.
	// They are listed from the start; the first lookup, stat or open of one
	// calls its Write (once per view; a failure is retried on the next use),
	// which must create Dir/Name.
	Lazy []LazyFile

	// Base is the snapshot the recovery starts from and Tree the directory
	// tree to serve (a tree of Base.Space, often Base.Root).
	Base *repo.Snapshot
	Tree chunk.ID
	// Files are generated files shown at the top of the view next to the
	// tree's entries, e.g. memories.jsonl: the state at T, one memory a line.
	Files []VirtualFile
}

// LazyFile is a file at the top of a PointInTime.Dir written when it is
// first used.
type LazyFile struct {
	Name string
	// Write creates Dir/Name. It runs with the mount's context, not the
	// request's: an interrupted reader does not waste the work.
	Write func(ctx context.Context) error
}

// VirtualFile is a file computed rather than stored.
type VirtualFile struct {
	Name string
	Size int64
	Data io.ReaderAt
}

// PointInTimeFunc recovers space at instant t (Unix nanoseconds), read on
// the space's timeline (0: the newest, as spaces/<space>/at/; N: timeline N,
// as spaces/<space>/timelines/N/at/). An
// instant that cannot be recovered is an error that says why; the view then
// answers ENOENT and logs the reason (EIO when the error wraps
// repo.ErrCorrupt). It runs at most once at a time per space and instant,
// with the mount's context, which is cancelled at unmount.
type PointInTimeFunc func(ctx context.Context, space string, timeline uint32, t int64) (*PointInTime, error)

// PointInTimeSelFunc recovers, at instant t (Unix nanoseconds), the space
// of the database sel chooses (pitr.Select: Identity set under
// hosts/<h>/spaces/<s>/ and hosts/<h>/identities/<id>/spaces/<s>/; only
// Space under spaces/<s>/, which is the only database that has it, as
// `--space S` alone resolves it), read on timeline sel.Timeline (0: the
// newest). It is PointInTimeFunc with the database chosen; otherwise the
// same.
type PointInTimeSelFunc func(ctx context.Context, sel pitr.Select, t int64) (*PointInTime, error)

// recoverAt is the recovery the mount uses: Options.PointInTimeSel, or
// Options.PointInTime for spaces/<s>/ only (it cannot choose a database).
func (f *FS) recoverAt(ctx context.Context, sel pitr.Select, t int64) (*PointInTime, error) {
	switch {
	case f.opts.PointInTimeSel != nil:
		return f.opts.PointInTimeSel(ctx, sel, t)
	case sel.Identity == "" && sel.Host == "":
		return f.opts.PointInTime(ctx, sel.Space, sel.Timeline, t)
	}
	return nil, errors.New("this mount recovers a space only under spaces/<space>/at/ (no Options.PointInTimeSel)")
}

// pitrEnabled reports whether at/<T> views are recovered.
func (f *FS) pitrEnabled() bool {
	return f.opts.PointInTime != nil || f.opts.PointInTimeSel != nil
}

// atEntry is <space>/at/: a README, and any instant as a lookup.
// Instants are not listed: a recursive walk of the mount (find, du, diff -r)
// must not recover every range of every space.
// sel is the database and timeline (0: the newest); base is at/'s path.
func (f *FS) atEntry(sel pitr.Select, base string) genEntry {
	readme := f.atReadmeEntry(base+"/README", sel)
	ino := inoFor(selNS(sel), base)
	return genEntry{name: "at", mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
		return &genDir{f: f, ino: ino, static: []genEntry{readme}, extra: func(ctx context.Context, name string) (genEntry, syscall.Errno) {
			return f.lookupInstant(ctx, sel, base, name)
		}}
	}}
}

// instantKey identifies a view: every name of one instant
// (2026-11-21T14:29:00Z, ...00.000Z, its Unix nanoseconds) of one timeline
// (0: the newest) of one database (none: spaces/<s>/'s) shares it.
func instantKey(sel pitr.Select, t int64) string {
	k := sel.Space
	if sel.Timeline != 0 {
		k += "~" + strconv.FormatUint(uint64(sel.Timeline), 10)
	}
	k += "@" + strconv.FormatInt(t, 10)
	if sel.Identity != "" || sel.Host != "" {
		k = sel.Identity + "/" + sel.Host + "/" + k
	}
	return k
}

// loadInstant returns the recovery of sel's space at t, for pitViews.acquire.
func (f *FS) loadInstant(sel pitr.Select, t int64) func() (*PointInTime, error) {
	return func() (*PointInTime, error) {
		pit, err := f.recoverAt(f.ctx, sel, t)
		if err == nil && (pit == nil || pit.Dir == "" && pit.Base == nil) {
			err = errors.New("the recovery returned neither a directory nor a base snapshot")
		}
		return pit, err
	}
}

// dbArgs are the log attributes naming a view's database, when chosen.
func dbArgs(sel pitr.Select) []any {
	if sel.Identity == "" {
		return nil
	}
	return []any{"identity", sel.Identity}
}

// lookupInstant materializes at/<name>: the first lookup of an instant
// recovers it (concurrent lookups wait for that one recovery); an instant
// that cannot be recovered does not exist, and the log says why.
func (f *FS) lookupInstant(ctx context.Context, sel pitr.Select, base, name string) (genEntry, syscall.Errno) {
	if !f.pitrEnabled() || f.opts.ParseInstant == nil {
		return genEntry{}, syscall.ENOENT
	}
	t, err := f.opts.ParseInstant(name)
	if err != nil {
		return genEntry{}, syscall.ENOENT
	}
	space, timeline := sel.Space, sel.Timeline
	key := instantKey(sel, t)
	pv, err := f.pits.acquire(ctx, key, f.loadInstant(sel, t))
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return genEntry{}, syscall.EINTR
		case errors.Is(err, repo.ErrCorrupt), errors.Is(err, errUnmounted):
			var recent *recentFailure
			if errors.As(err, &recent) {
				return genEntry{}, syscall.EIO
			}
			return genEntry{}, f.errno("point in time unreadable", err, append([]any{"space", space, "at", name, "timeline", timelineLabel(timeline)}, dbArgs(sel)...)...)
		}
		var recent *recentFailure
		if !errors.As(err, &recent) { // logged when it happened
			f.log.Warn("point in time cannot be recovered", append([]any{"space", space, "at", name, "timeline", timelineLabel(timeline)}, append(dbArgs(sel), "err", err)...)...)
		}
		return genEntry{}, syscall.ENOENT
	}
	defer f.pits.release(pv)
	pit := pv.pit
	ns := "at:" + space + ":" + name
	switch {
	case sel.Identity != "" || sel.Host != "":
		// A database's view: its own inode numbers (go-fuse keeps the
		// node first made for a number).
		ns = "at:" + sel.Identity + ":" + base + ":" + name
	case timeline != 0:
		ns = "at:" + space + "~" + strconv.FormatUint(uint64(timeline), 10) + ":" + name
	}
	ino := inoFor(ns, "/")
	if pit.Dir != "" {
		v := &viewRef{f: f, key: key, sel: sel, space: space, name: name, t: t, ns: ns}
		return genEntry{name: name, mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
			return &pitDir{v: v, ino: ino}
		}}, 0
	}
	root := pit.Tree
	ref := &snapRef{f: f, ns: ns, name: space + "@" + name, space: pit.Base.Space, time: time.Unix(0, t), root: &root}
	for _, vf := range pit.Files {
		ref.extras = append(ref.extras, f.virtualFileEntry(inoFor(ns, "/"+vf.Name), vf))
	}
	sortEntries(ref.extras)
	return genEntry{name: name, mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
		return &treeDir{f: f, snap: ref, ino: ino, path: "/"}
	}}, 0
}

func (f *FS) virtualFileEntry(ino uint64, vf VirtualFile) genEntry {
	return genEntry{name: vf.Name, mode: syscall.S_IFREG, ino: ino, build: func() fs.InodeEmbedder {
		return &virtualFile{f: f, ino: ino, vf: vf}
	}}
}

// virtualFile serves a VirtualFile.
type virtualFile struct {
	fs.Inode
	readOnly
	f   *FS
	ino uint64
	vf  VirtualFile
}

var (
	_ fs.NodeOpener    = (*virtualFile)(nil)
	_ fs.NodeReader    = (*virtualFile)(nil)
	_ fs.NodeGetattrer = (*virtualFile)(nil)
)

func (v *virtualFile) fillAttr(ctx context.Context, a *fuse.Attr) {
	a.Ino = v.ino
	a.Mode = syscall.S_IFREG | 0o444
	a.Nlink = 1
	a.Size = uint64(v.vf.Size)
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
	setTimes(a, v.f.started)
}

func (v *virtualFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	v.fillAttr(ctx, &out.Attr)
	return 0
}

func (v *virtualFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if wantsWrite(flags) {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (v *virtualFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= v.vf.Size {
		return fuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), v.vf.Size-off)]
	n, err := v.vf.Data.ReadAt(dest, off)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(dest)) {
		return nil, v.f.errno("read failed", err, "file", v.vf.Name, "offset", off)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// timelineLabel names a view's timeline in log lines.
func timelineLabel(timeline uint32) string {
	if timeline == 0 {
		return "newest"
	}
	return strconv.FormatUint(uint64(timeline), 10)
}
