package fusefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/chunk"
	"memento/repo"
)

// PointInTime is a space as recovered at one instant, served under
// spaces/<space>/at/<T>/.
type PointInTime struct {
	// Base is the snapshot the recovery starts from and Tree the directory
	// tree to serve (a tree of Base.Space, often Base.Root).
	Base *repo.Snapshot
	Tree chunk.ID
	// Files are generated files shown at the top of the view next to the
	// tree's entries, e.g. memories.jsonl: the state at T, one memory a line.
	Files []VirtualFile
}

// VirtualFile is a file computed rather than stored.
type VirtualFile struct {
	Name string
	Size int64
	Data io.ReaderAt
}

// PointInTimeFunc recovers space at instant t (Unix nanoseconds). An
// instant that cannot be recovered is an error that says why; the view then
// answers ENOENT and logs the reason.
type PointInTimeFunc func(ctx context.Context, space string, t int64) (*PointInTime, error)

// ParseInstant parses an instant as `memento restore --at` accepts it:
// RFC 3339 with up to nine fractional digits, or Unix nanoseconds.
func ParseInstant(s string) (int64, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("instant %q: %w", s, err)
		}
		return ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("instant %q: want RFC 3339 (2026-11-21T14:29:00Z) or Unix nanoseconds", s)
	}
	return t.UnixNano(), nil
}

const atReadmeComing = `Point-in-time views of this space will appear here.

Once point-in-time recovery is built in, any instant that
'memento restore --at' accepts works as a directory name, e.g.

    ls at/2026-11-21T14:29:00Z/
    cat at/1763735340000000000/memories.jsonl

This build cannot recover points in time yet; use the snapshots in
../by-time/ or 'memento restore --space <id> --at <T>'.
`

const atReadme = `This directory shows the space as recovered at any instant.

Name an instant as 'memento restore --at' accepts it, as a directory:

    ls at/2026-11-21T14:29:00Z/
    cat at/2026-11-21T14:29:00.123456789Z/memories.jsonl
    ls at/1763735340000000000/          (Unix nanoseconds)

Each view is recovered when it is first looked up. An instant that cannot
be recovered (before the first snapshot, or in a gap of the archived WAL)
does not exist; the mount's log says why.
`

// atEntry is spaces/<space>/at/: a README, and any instant as a lookup.
func (f *FS) atEntry(space string) genEntry {
	base := "/spaces/" + space + "/at"
	text := atReadmeComing
	if f.opts.PointInTime != nil {
		text = atReadme
	}
	readme := f.staticFileEntry(base+"/README", "README", []byte(text))
	ino := inoFor("v", base)
	return genEntry{name: "at", mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
		return &genDir{f: f, ino: ino, static: []genEntry{readme}, extra: func(ctx context.Context, name string) (genEntry, syscall.Errno) {
			return f.lookupInstant(ctx, space, name)
		}}
	}}
}

// lookupInstant materializes at/<name>.
func (f *FS) lookupInstant(ctx context.Context, space, name string) (genEntry, syscall.Errno) {
	if f.opts.PointInTime == nil {
		return genEntry{}, syscall.ENOENT
	}
	t, err := ParseInstant(name)
	if err != nil {
		return genEntry{}, syscall.ENOENT
	}
	key := space + "\x00" + name
	pit, err := f.pits.get(ctx, key, func() (*PointInTime, error) { return f.opts.PointInTime(f.ctx, space, t) })
	if err != nil {
		if errors.Is(err, repo.ErrCorrupt) {
			return genEntry{}, f.errno("point in time unreadable", err, "space", space, "at", name)
		}
		f.log.Warn("point in time cannot be recovered", "space", space, "at", name, "err", err)
		return genEntry{}, syscall.ENOENT
	}
	ns := "at:" + space + ":" + name
	ino := inoFor(ns, "/")
	root := pit.Tree
	ref := &snapRef{f: f, ns: ns, name: space + "@" + name, space: pit.Base.Space, time: time.Unix(0, t), root: &root}
	for _, vf := range pit.Files {
		ref.extras = append(ref.extras, f.virtualFileEntry(inoFor(ns, "/"+vf.Name), vf))
	}
	return genEntry{name: name, mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
		return &treeDir{f: f, snap: ref, ino: ino, path: "/"}
	}}, 0
}

// staticFileEntry is a small generated file with fixed content.
func (f *FS) staticFileEntry(path, name string, content []byte) genEntry {
	return f.virtualFileEntry(inoFor("v", path), VirtualFile{Name: name, Size: int64(len(content)), Data: bytes.NewReader(content)})
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
