package fusefs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/repo/pitr"
)

// at/README says how to use at/ and which instants can be recovered right
// now. The ranges grow as `wal archive` runs, so the text is computed when
// the file is opened (and for its size, at most once per dynamicTimeout) and
// served with direct I/O: a reader always sees one whole, current text.

const atReadmeDisabled = `Point-in-time views of this space are not available in this mount.

It was started without point-in-time recovery; use the snapshots in
../by-time/, or recover one with
'memento restore --at T --space %[1]s --target DIR'.
`

const atReadmeHead = `This directory shows space %[1]s%[5]s as recovered at any instant.

Recoverable ranges (as 'memento pitr ranges --space %[6]s' prints them):
%[2]s
Name an instant as 'memento restore --at' accepts it, as a directory:
RFC 3339 with any offset and up to 9 fractional digits, Unix nanoseconds,
@Unix seconds, or a local date and time in the mount's --tz (2026-12-05 14:03);
not a relative one (2h ago), as a name must mean the same instant each time.

    ls at/%[3]s/
    cat at/%[3]s/memories.jsonl
    ls at/%[4]d/

Each view holds what 'memento restore --space %[6]s --at T --target DIR'
writes to DIR (metadata.json and spaces/%[1]s/), and:

    memories.jsonl   the state at T, one memory a line, sorted by id
    state.json       where the recovery stopped: seq, time, state digest

A view is recovered when it is first looked up (a restore of the space, so
it takes a while); the views used last stay on disk until the unmount.
An instant that cannot be recovered does not exist; the mount's log says why.
`

// readmeText returns the README of at/ for sel's space: of its newest
// timeline (sel.Timeline 0, <space>/at/) or of timeline N
// (<space>/timelines/N/at/), of the database sel chooses.
func (f *FS) readmeText(ctx context.Context, sel pitr.Select) []byte {
	space, timeline := sel.Space, sel.Timeline
	if !f.pitrEnabled() {
		return fmt.Appendf(nil, atReadmeDisabled, selArgs(sel))
	}
	f.age(listingAge) // sync with the repository: new snapshots extend the ranges
	var rs []pitr.PITRRange
	v, err := pitr.Resolve(f.ctx, f.r, pitr.Select{Space: space, Identity: sel.Identity, Host: sel.Host, Timeline: timeline})
	if err == nil {
		rs, _, err = f.opts.Planner.RangesOf(f.ctx, f.r, v)
	}
	var list strings.Builder
	example := time.Now().UTC().Truncate(time.Second)
	switch {
	case err != nil:
		fmt.Fprintf(&list, "  (cannot be listed: %v)\n", err)
	case len(rs) == 0:
		fmt.Fprintf(&list, "  none yet: no snapshot of this space records WAL positions\n  (take one with 'memento backup --data-dir DIR --space %s')\n", space)
	default:
		for _, g := range rs {
			fmt.Fprintf(&list, "  %s\n", g)
		}
		example = time.Unix(0, rs[len(rs)-1].ToTS).UTC()
	}
	text := fmt.Appendf(nil, atReadmeHead, space, list.String(), example.Format(time.RFC3339Nano), example.UnixNano(), dbLabel(sel), selArgs(sel))
	switch {
	case err != nil:
	case timeline != 0:
		text = fmt.Appendf(text, atReadmeTimeline, v.Line.Timeline, selArgs(sel))
	case len(v.History.Timelines()) > 1:
		text = fmt.Appendf(text, atReadmeNewest, v.Line.Timeline, space)
	}
	return text
}

// selArgs is what names sel's space on the command line: "S", or
// "S --identity ID" for one database's.
func selArgs(sel pitr.Select) string {
	if sel.Identity != "" {
		return sel.Space + " --identity " + sel.Identity
	}
	return sel.Space
}

// dbLabel names sel's database in a README, when chosen.
func dbLabel(sel pitr.Select) string {
	if sel.Identity != "" {
		return " of database " + sel.Identity
	}
	return ""
}

const atReadmeTimeline = `
These views are of timeline %[1]d (what 'memento restore --space %[2]s
--timeline %[1]d --at T' recovers); ../../ lists every timeline.
`

const atReadmeNewest = `
These views are of the newest timeline, %[1]d; the other timelines of
space %[2]s are under ../timelines/ (a restore to an earlier point that
was archived again started a timeline: docs/pitr.md, "Timelines").
`

func (f *FS) atReadmeEntry(path string, sel pitr.Select) genEntry {
	ino := inoFor(selNS(sel), path)
	return f.textFileEntry(ino, "README", func(ctx context.Context) []byte { return f.readmeText(ctx, sel) })
}

// textFileEntry is a generated text file computed when it is opened.
func (f *FS) textFileEntry(ino uint64, name string, text func(ctx context.Context) []byte) genEntry {
	return genEntry{name: name, mode: syscall.S_IFREG, ino: ino, build: func() fs.InodeEmbedder {
		return &readmeFile{f: f, ino: ino, text: text}
	}}
}

// readmeFile is at/README or timelines/README: a text computed when the
// file is opened.
type readmeFile struct {
	fs.Inode
	readOnly
	f    *FS
	ino  uint64
	text func(ctx context.Context) []byte

	mu     sync.Mutex
	cached []byte
	at     time.Time
}

var (
	_ fs.NodeOpener    = (*readmeFile)(nil)
	_ fs.NodeReader    = (*readmeFile)(nil)
	_ fs.NodeGetattrer = (*readmeFile)(nil)
)

// current returns the text, recomputed when older than maxAge.
func (r *readmeFile) current(ctx context.Context, maxAge time.Duration) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cached == nil || time.Since(r.at) >= maxAge {
		r.cached, r.at = r.text(ctx), time.Now()
	}
	return r.cached
}

func (r *readmeFile) fillAttr(ctx context.Context, a *fuse.Attr) {
	a.Ino = r.ino
	a.Mode = syscall.S_IFREG | 0o444
	a.Nlink = 1
	a.Size = uint64(len(r.current(ctx, dynamicTimeout)))
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
	setTimes(a, r.f.started)
}

func (r *readmeFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	r.fillAttr(ctx, &out.Attr)
	out.SetTimeout(dynamicTimeout)
	return 0
}

// readmeHandle is one open of the README: the text as it was at open.
type readmeHandle struct{ text []byte }

func (r *readmeFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if wantsWrite(flags) {
		return nil, 0, syscall.EROFS
	}
	return &readmeHandle{text: r.current(ctx, 0)}, fuse.FOPEN_DIRECT_IO, 0
}

func (r *readmeFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, ok := fh.(*readmeHandle)
	if !ok {
		return nil, syscall.EBADF
	}
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= int64(len(h.text)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(h.text[off:min(int64(len(h.text)), off+int64(len(dest)))]), 0
}
