package verify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/dustin/go-humanize/english"

	"memento/engram"
	"memento/repo"
	"memento/walreplay"
)

// segResult is what checking one WAL segment of a snapshot found.
type segResult struct {
	name    string
	nameSeq uint64
	sum     walreplay.Summary
	err     error // the segment does not verify (walreplay's error)
	readErr error // its bytes could not be read whole (damage found by L2)
}

var errTapDone = errors.New("segment check finished")

// segTap streams one WAL segment, as L2 verifies its bytes, through
// walreplay.VerifySegment on its own goroutine (CRC32C on the second core).
type segTap struct {
	pw   *io.PipeWriter
	done chan struct{}
	once sync.Once
	res  segResult
}

func newSegTap(ctx context.Context, name string) *segTap {
	pr, pw := io.Pipe()
	t := &segTap{pw: pw, done: make(chan struct{}), res: segResult{name: name}}
	t.res.nameSeq, _ = walreplay.ParseSegmentName(name)
	go func() {
		defer close(t.done)
		t.res.sum, t.res.err = walreplay.VerifySegment(ctx, pr, name)
		pr.CloseWithError(errTapDone) // writers of the rest return at once
	}()
	return t
}

func (t *segTap) Write(p []byte) (int, error) { return t.pw.Write(p) }

func (t *segTap) finish(err error) {
	t.once.Do(func() {
		if err != nil {
			t.pw.CloseWithError(err)
		} else {
			t.pw.Close()
		}
		<-t.done
		if err != nil {
			t.res.readErr = err
		}
	})
}

// capTap keeps a small file's bytes (checkpoint.json).
type capTap struct {
	b   bytes.Buffer
	err error
}

func (c *capTap) Write(p []byte) (int, error) {
	if c.b.Len()+len(p) > 1<<20 {
		return 0, errors.New("larger than 1 MiB")
	}
	return c.b.Write(p)
}

func (c *capTap) finish(err error) { c.err = err }

func isSegmentName(name string) bool {
	return strings.HasPrefix(name, "wal-") && strings.HasSuffix(name, ".log")
}

// structure is L3: L2 with every WAL segment and checkpoint.json of a space
// snapshot streamed through the Engram checks while L2 verifies them.
func (v *Verifier) structure(ctx context.Context, w *SnapWalk, vd *Verdict) error {
	if w.sn.Space == "" {
		err := v.data(ctx, w, vd, nil)
		vd.note("L3: a snapshot of plain paths has no Engram structure; L2 checks only")
		return err
	}
	sp := "spaces/" + w.sn.Space
	var segs []*segTap
	var cp *capTap
	tapped := map[string]bool{}
	tap := func(f WalkFile) fileTap {
		switch {
		case f.Rel == sp+"/checkpoint.json":
			cp = &capTap{}
			return cp
		case path.Dir(f.Rel) == sp+"/wal" && isSegmentName(path.Base(f.Rel)):
			t := newSegTap(ctx, path.Base(f.Rel))
			segs = append(segs, t)
			tapped[f.Rel] = true
			return t
		}
		return nil
	}
	err := v.data(ctx, w, vd, tap)
	for _, t := range segs {
		t.finish(err) // no-op for the taps L2 finished
	}
	if err != nil {
		return err
	}
	var results []*segResult
	for _, t := range segs {
		results = append(results, &t.res)
	}
	for _, f := range w.Files {
		if path.Dir(f.Rel) == sp+"/wal" && isSegmentName(path.Base(f.Rel)) && !tapped[f.Rel] {
			r := &segResult{name: path.Base(f.Rel), readErr: errors.New("its data is damaged (see above)")}
			r.nameSeq, _ = walreplay.ParseSegmentName(r.name)
			results = append(results, r)
		}
	}
	var cpBytes []byte
	cpPresent := w.types[sp+"/checkpoint.json"] == repo.NodeFile
	if cpPresent && cp != nil && cp.err == nil {
		cpBytes = cp.b.Bytes()
	} else if cpPresent {
		vd.fail(L3, "space "+w.sn.Space, "checkpoint.json could not be read whole")
		cpPresent = false
	}
	checkEngram(vd, L3, w.sn, w.types, results, cpBytes, cpPresent)
	return nil
}

// checkEngram checks the Engram structure of a space snapshot: the layout,
// the tiers, every segment (magic, CRC32C, sequences inside it), the chain
// between segments, the checkpoint within the WAL range, and the WAL range
// against the one the manifest recorded at backup time.
func checkEngram(vd *Verdict, lvl Level, sn *repo.Snapshot, types map[string]string, segs []*segResult, cp []byte, cpPresent bool) {
	space := "space " + sn.Space
	sp := "spaces/" + sn.Space
	if types["metadata.json"] != repo.NodeFile {
		vd.fail(lvl, space, "layout: no metadata.json (the data dir's space registry)")
	}
	if types[sp] != repo.NodeDir {
		vd.fail(lvl, space, "layout: no %s/ directory", sp)
		return
	}
	if types[sp+"/wal"] != repo.NodeDir {
		vd.fail(lvl, space, "layout: no wal/ directory")
	}
	var cpSeq uint64
	if cpPresent {
		if c, err := engram.ParseCheckpoint(cp); err != nil {
			vd.fail(lvl, space, "checkpoint.json is not {\"sequence\": N, \"timestamp_ns\": T}: %q", truncateText(cp, 80))
		} else {
			cpSeq = c.Sequence
		}
	}
	var missing []string
	for _, t := range []struct{ rel, typ string }{{"hot", repo.NodeDir}, {"warm/warm_tier.dat", repo.NodeFile}, {"cold", repo.NodeDir}} {
		if types[sp+"/"+t.rel] != t.typ {
			missing = append(missing, t.rel)
		}
	}
	if len(missing) > 0 && cpSeq > 0 {
		vd.fail(lvl, space, "tiers missing: %s, although checkpoint.json says the tiers hold the state through seq %d", strings.Join(missing, ", "), cpSeq)
	} else if len(missing) > 0 {
		vd.note("%s: no %s (nothing checkpointed yet)", lvl, strings.Join(missing, ", "))
	}

	sort.Slice(segs, func(i, j int) bool { return segs[i].nameSeq < segs[j].nameSeq })
	var prev *segResult
	var firstName, firstEntry, last uint64
	var entries int64
	broken := false
	for i, s := range segs {
		what := "WAL segment " + s.name
		switch {
		case s.readErr != nil:
			vd.fail(lvl, what, "not checked: %v", s.readErr)
		case errors.Is(s.err, walreplay.ErrGap):
			vd.fail(lvl, what, "sequence gap inside the segment: %v", s.err)
		case s.err != nil:
			vd.fail(lvl, what, "%v", s.err)
		}
		if s.readErr != nil || s.err != nil {
			prev, broken = nil, true
			continue
		}
		if s.sum.TornTail && i < len(segs)-1 {
			vd.fail(lvl, what, "torn tail at offset %d in a segment that is not the newest", s.sum.TornOffset)
		}
		if s.sum.Entries == 0 {
			if i < len(segs)-1 {
				vd.fail(lvl, what, "empty segment that is not the newest")
			}
			continue
		}
		if prev != nil {
			want := prev.sum.LastSeq + 1
			switch {
			case s.nameSeq > want:
				vd.fail(lvl, "WAL", "gap: sequences %d..%d are missing (after %s, before %s)", want, s.nameSeq-1, prev.name, s.name)
			case s.nameSeq < want:
				vd.fail(lvl, "WAL", "overlap: %s starts at seq %d but %s ends at %d", s.name, s.nameSeq, prev.name, prev.sum.LastSeq)
			}
			if s.sum.FirstTS < prev.sum.LastTS {
				vd.fail(lvl, what, "timestamps go backwards across segments: %d after %d", s.sum.FirstTS, prev.sum.LastTS)
			}
		}
		if entries == 0 {
			firstName, firstEntry = s.nameSeq, s.sum.FirstSeq
		}
		entries += s.sum.Entries
		last = s.sum.LastSeq
		prev = s
	}
	e := sn.Engram
	switch {
	case entries == 0:
		if e != nil && e.WALEnd.Seq > 0 {
			vd.fail(lvl, "WAL", "no entries, but the manifest says the WAL ends at seq %d", e.WALEnd.Seq)
		}
		if cpSeq == 0 && len(segs) == 0 {
			vd.note("%s: empty space (no WAL, no checkpoint)", lvl)
		}
	case broken:
		// The range is unknown; the segment findings above say why.
	default:
		if cpSeq > 0 && cpSeq+1 < firstName {
			vd.fail(lvl, "WAL", "gap: checkpoint.json is at seq %d but the WAL starts at %d: sequences %d..%d are in neither the tiers nor the WAL", cpSeq, firstName, cpSeq+1, firstName-1)
		}
		if cpSeq == 0 && firstName > 1 {
			vd.fail(lvl, "WAL", "gap: no checkpoint, but the WAL starts at seq %d: sequences 1..%d are lost", firstName, firstName-1)
		}
		if cpSeq > last {
			vd.fail(lvl, "WAL", "checkpoint.json is at seq %d, after the WAL's end %d", cpSeq, last)
		}
		if e != nil {
			if e.WALEnd.Seq > last {
				vd.fail(lvl, "WAL", "ends at seq %d, before the end recorded at backup (%d): sequences %d..%d are missing", last, e.WALEnd.Seq, last+1, e.WALEnd.Seq)
			}
			if e.WALFirst.Seq != 0 && e.WALFirst.Seq != firstEntry {
				vd.fail(lvl, "WAL", "starts at seq %d, the manifest recorded %d", firstEntry, e.WALFirst.Seq)
			}
		}
		vd.note("%s: WAL of %s, seq %d..%d, %s, magic and CRC32C of every entry and the chain verified; checkpoint at seq %d",
			lvl, english.Plural(len(segs), "segment", ""), firstEntry, last, english.Plural(int(entries), "entry", "entries"), cpSeq)
	}
	if e == nil {
		vd.note("%s: the manifest records no WAL range for this space", lvl)
	}
}

func truncateText(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
