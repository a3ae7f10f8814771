package walreplay

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// markEnd marks the end of l's newest non-empty segment (nil when none).
func markEnd(t *testing.T, l *Log) *Mark {
	t.Helper()
	for i := len(l.segs) - 1; i >= 0; i-- {
		if l.segs[i].Size > 0 {
			fi, err := os.Stat(l.segs[i].Path)
			if err != nil {
				t.Fatal(err)
			}
			return NewMark(l.segs[i], fi)
		}
	}
	return nil
}

// readerLast is what a plain segment reader gives as the last complete
// entry of the listed segments: the newest with one, each read up to its
// listed size (what the backup's WAL start was, read whole).
func readerLast(t *testing.T, segs []SegmentInfo) Position {
	t.Helper()
	for i := len(segs) - 1; i >= 0; i-- {
		f, err := os.Open(segs[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		sr := NewSegmentReader(io.LimitReader(f, segs[i].Size), segs[i].Name)
		var pos Position
		for {
			e, err := sr.Next()
			if err != nil {
				break
			}
			pos = Position{Seq: e.Seq, TimestampNS: e.TimestampNS}
		}
		f.Close()
		if pos.Seq > 0 {
			return pos
		}
	}
	return Position{}
}

// replayMarked replays dir from cp (nil: the start) with m and returns what
// m tells and the replay's error.
func replayMarked(t *testing.T, dir string, cp *Checkpoint, m *Mark) (Position, bool, error) {
	t.Helper()
	s := NewZeroCopyState()
	defer s.Close()
	_, _, _, err := mustOpenLog(t, dir).ReplayResumeMarked(context.Background(), cp, s, m)
	p, ok := m.Last()
	return p, ok, err
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A Mark gives the last entry the log held when it was listed, whatever was
// appended since (into the marked segment and into new ones), also when the
// listing saw a torn entry, when that torn entry was the marked segment's
// first (the entry before the segment is then the answer), for a replay
// from the start and one resumed from a checkpoint; and it says it cannot
// tell rather than give another entry when it cannot (damage before the
// mark, the segment replaced or its predecessors removed, a checkpoint
// after the mark).
func TestMarkIsTheLogAsListed(t *testing.T) {
	es := genEntries(21, 3000, 8)
	const maxSeg = 96 << 10
	ctx := context.Background()

	// listed writes es[:n] (bytes cut off the end: a torn entry) to a new
	// log, marks its end and then completes it with es[n:more].
	type log struct {
		dir  string
		segs []SegmentInfo
		m    *Mark
		want Position
	}
	listed := func(n, cut, more int) log {
		t.Helper()
		dir := t.TempDir()
		writeLog(t, dir, maxSeg, es[:n])
		l := mustOpenLog(t, dir)
		newest := l.segs[len(l.segs)-1]
		var tail []byte
		if cut > 0 {
			b, err := os.ReadFile(newest.Path)
			if err != nil {
				t.Fatal(err)
			}
			tail = append(tail, b[len(b)-cut:]...)
			if err := os.Truncate(newest.Path, int64(len(b)-cut)); err != nil {
				t.Fatal(err)
			}
			l = mustOpenLog(t, dir)
		}
		lg := log{dir: dir, segs: l.Segments(), m: markEnd(t, l)}
		lg.want = readerLast(t, lg.segs)
		if tail != nil {
			appendBytes(t, newest.Path, tail)
		}
		writeLog(t, dir, maxSeg, es[n:more])
		if got := readerLast(t, mustOpenLog(t, dir).Segments()); got.Seq != uint64(more) {
			t.Fatalf("log of %d entries ends at %+v", more, got)
		}
		return lg
	}
	check := func(name string, lg log, cp *Checkpoint, wantOK bool) {
		t.Helper()
		p, ok, err := replayMarked(t, lg.dir, cp, lg.m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ok != wantOK || ok && p != lg.want {
			t.Fatalf("%s: %+v %v, want %+v %v", name, p, ok, lg.want, wantOK)
		}
	}

	check("appends into the marked segment and new ones", listed(1500, 0, 2500), nil, true)
	lg := listed(1500, 9, 2500) // the last entry torn when listed
	if lg.want.Seq != 1499 {
		t.Fatalf("torn: the reader gives %+v", lg.want)
	}
	check("torn entry when listed", lg, nil, true)
	check("entries appended after a torn entry", listed(1500, 9, 1500), nil, true)

	// The newest segment torn in its first entry when listed: the answer is
	// the previous segment's last entry.
	var n int
	{
		dir := t.TempDir()
		writeLog(t, dir, maxSeg, es[:2000])
		segs := mustOpenLog(t, dir).Segments()
		n = int(segs[len(segs)-1].FirstSeq) // the newest segment holds es[n-1:]
	}
	lg = listed(n, int(es[n-1].Size())-HeaderSize/2, 2000)
	if len(lg.segs) < 2 || lg.want.Seq != uint64(n-1) || lg.m.Segment().FirstSeq != uint64(n) {
		t.Fatalf("first entry torn: %d segments, reader %+v, mark in %s", len(lg.segs), lg.want, lg.m.Segment().Name)
	}
	check("first entry of the marked segment torn", lg, nil, true)
	// ... and the segments before it removed since: the replay cannot say.
	lg2 := listed(n, int(es[n-1].Size())-HeaderSize/2, 2000)
	for _, s := range lg2.segs[:len(lg2.segs)-1] {
		if err := os.Remove(s.Path); err != nil {
			t.Fatal(err)
		}
	}
	check("older segments removed since", lg2, nil, false)

	// Resumed from a checkpoint made before the mark (the day after); one
	// made after the mark cannot say.
	dir := t.TempDir()
	writeLog(t, dir, maxSeg, es[:1000])
	s := NewZeroCopyState()
	_, cp, _, err := mustOpenLog(t, dir).ReplayResume(ctx, nil, s)
	s.Close()
	if err != nil || cp == nil {
		t.Fatalf("checkpoint: %v", err)
	}
	writeLog(t, dir, maxSeg, es[1000:1700])
	lg = log{dir: dir, segs: mustOpenLog(t, dir).Segments()}
	lg.m, lg.want = markEnd(t, mustOpenLog(t, dir)), readerLast(t, lg.segs)
	writeLog(t, dir, maxSeg, es[1700:2100])
	enc, _ := cp.MarshalBinary()
	fresh := func() *Checkpoint {
		c, err := ParseCheckpoint(enc)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	check("resumed from a checkpoint before the mark", lg, fresh(), true)
	s = NewZeroCopyState()
	_, late, resumed, err := mustOpenLog(t, dir).ReplayResumeMarked(ctx, fresh(), s, lg.m)
	s.Close()
	if err != nil || !resumed || late == nil {
		t.Fatalf("resumed %v err %v", resumed, err)
	}
	if p, ok := lg.m.Last(); !ok || p != lg.want {
		t.Fatalf("resumed: %+v %v, want %+v", p, ok, lg.want)
	}
	writeLog(t, dir, maxSeg, es[2100:2200])
	check("resumed from a checkpoint after the mark", lg, late, false)

	// Damage in the marked segment before the mark: a reader may accept
	// what the replay refuses, so the replay cannot say; damage after the
	// mark leaves it known.
	lg = listed(1500, 0, 1500)
	seg := lg.m.Segment()
	b, err := os.ReadFile(seg.Path)
	if err != nil {
		t.Fatal(err)
	}
	appendBytes(t, seg.Path, make([]byte, 100)) // zeros after the mark
	if _, _, err := replayMarked(t, lg.dir, nil, lg.m); err == nil {
		t.Fatal("zeros after the last entry: the replay did not fail")
	}
	if p, ok := lg.m.Last(); !ok || p != lg.want {
		t.Fatalf("damage after the mark: %+v %v, want %+v", p, ok, lg.want)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(seg.Path, b, 0o644); err != nil { // same inode, rewritten
		t.Fatal(err)
	}
	if _, _, err := replayMarked(t, lg.dir, nil, lg.m); err == nil {
		t.Fatal("a flipped byte: the replay did not fail")
	}
	if p, ok := lg.m.Last(); ok {
		t.Fatalf("damage before the mark: %+v, want unknown", p)
	}

	// The marked segment replaced by another file of the same name.
	lg = listed(1500, 0, 1600)
	seg = lg.m.Segment()
	b, err = os.ReadFile(seg.Path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(lg.dir, "replacement")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, seg.Path); err != nil {
		t.Fatal(err)
	}
	check("marked segment replaced", lg, nil, false)
}
