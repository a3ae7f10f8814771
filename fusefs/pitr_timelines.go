package fusefs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"

	"memento/repo/pitr"
	"memento/repo/walarchive"
)

// spaces/<space>/timelines/ shows every timeline of the space (docs/pitr.md,
// "Timelines"): a directory N/ per timeline holding at/, whose instants are
// recovered on timeline N (at/ beside timelines/ reads the newest), and a
// README listing each timeline's parent, fork point and ranges. The
// timelines come from the history records, not from the snapshot catalog:
// they are listed anew on every listing and lookup (a few small files).

const timelinesReadmeHead = `This directory shows each timeline of space %[1]s%[3]s.

A restore to an earlier point that was archived again started a new
timeline: the space's history forked there, and both branches stay
recoverable (docs/pitr.md, "Timelines"). N/at/<T>/ is the space as
recovered at instant T on timeline N, what
'memento restore --space %[4]s --timeline N --at T --target DIR' writes;
../at/ reads the newest timeline.

Timelines and their recoverable ranges (as 'memento pitr ranges --space %[4]s'
prints them):
%[2]s`

// timelinesEntry is <space>/timelines/ of the database sel chooses; dir
// is <space>/'s path.
func (f *FS) timelinesEntry(sel pitr.Select, dir string) genEntry {
	base := dir + "/timelines"
	readme := f.textFileEntry(inoFor(selNS(sel), base+"/README"), "README", func(ctx context.Context) []byte {
		return f.timelinesReadme(sel)
	})
	ino := inoFor(selNS(sel), base)
	return genEntry{name: "timelines", mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
		return &genDir{f: f, ino: ino, dynamic: true, static: []genEntry{readme}, live: func(ctx context.Context) []genEntry {
			return f.listTimelines(ctx, sel, base)
		}}
	}}
}

// spaceHistory is the history of the database sel chooses (as `pitr
// ranges` resolves it: without an identity, the only one that has the
// space).
func (f *FS) spaceHistory(ctx context.Context, sel pitr.Select) (*walarchive.History, error) {
	id, err := walarchive.ResolveDatabase(ctx, f.r, sel.Space, sel.Identity, sel.Host)
	if err != nil {
		return nil, err
	}
	return walarchive.LoadHistory(ctx, f.r, id, sel.Space)
}

// listTimelines lists timelines/: a directory per timeline of the space.
func (f *FS) listTimelines(ctx context.Context, sel pitr.Select, base string) []genEntry {
	if !f.pitrEnabled() {
		return nil
	}
	h, err := f.spaceHistory(ctx, sel)
	if err != nil {
		f.log.Warn("cannot list the timelines", append([]any{"space", sel.Space}, append(dbArgs(sel), "err", err)...)...)
		return nil
	}
	var out []genEntry
	for _, n := range h.Timelines() {
		name := strconv.FormatUint(uint64(n), 10)
		dir := base + "/" + name
		tl := sel
		tl.Timeline = n
		at := f.atEntry(tl, dir+"/at")
		ino := inoFor(selNS(sel), dir)
		out = append(out, genEntry{name: name, mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
			return &genDir{f: f, ino: ino, static: []genEntry{at}}
		}})
	}
	return out
}

// timelinesReadme is timelines/README: every timeline and its ranges.
func (f *FS) timelinesReadme(sel pitr.Select) []byte {
	if !f.pitrEnabled() {
		return fmt.Appendf(nil, atReadmeDisabled, selArgs(sel))
	}
	f.age(listingAge) // sync with the repository: new snapshots extend the ranges
	var list strings.Builder
	tls, err := f.opts.Planner.AllTimelines(f.ctx, f.r, pitr.Select{Space: sel.Space, Identity: sel.Identity, Host: sel.Host})
	if err != nil {
		fmt.Fprintf(&list, "  (cannot be listed: %v)\n", err)
	}
	for _, tl := range tls {
		fmt.Fprintf(&list, "%s: %d/at/\n", tl, tl.Timeline)
		if len(tl.Ranges) == 0 {
			fmt.Fprintf(&list, "  none: no snapshot of this timeline (or of its parents before the fork) records WAL positions\n")
		}
		for _, g := range tl.Ranges {
			fmt.Fprintf(&list, "  %s\n", g)
		}
	}
	return fmt.Appendf(nil, timelinesReadmeHead, sel.Space, list.String(), dbLabel(sel), selArgs(sel))
}
