package walreplay

import (
	"errors"
	"os"
)

// Mark is a point of a log as an earlier listing of it saw it: Size bytes
// into segment Name, the end then of its newest non-empty segment, in the
// file that segment was then. A replay given the Mark (ReplayResumeMarked)
// also finds the last complete entry the log held at that point, the entry
// a reader of the segment limited to Size bytes would end on (the log only
// grows: entries appended since lie after the point), without that segment
// being read twice: the entries of the segment that end within Size bytes,
// else the last entry before the segment.
//
// A Mark is filled by one replay at a time; Last is read after it.
type Mark struct {
	seg  SegmentInfo
	file os.FileInfo

	last  Position
	known bool
	bad   bool // the replay cannot tell (see Last)
	idx   int  // index of the mark's segment in the replayed log, -1: none
}

// NewMark marks the end of seg (its Name and Size, as listed) in file, the
// segment's file as it was then (os.File.Stat of a descriptor opened on it,
// so that a segment replaced since under the same name is noticed).
func NewMark(seg SegmentInfo, file os.FileInfo) *Mark {
	return &Mark{seg: seg, file: file, idx: -1}
}

// Segment returns the segment the mark is in, as it was listed.
func (m *Mark) Segment() SegmentInfo { return m.seg }

// Last returns the last complete entry before the mark (zero when none),
// and whether the last replay given the mark could tell. It cannot when it
// did not walk every entry up to the mark, or met damage before the mark
// (the entries a plain segment reader would still accept there are not
// known), or when the mark's segment is gone or is another file than the
// marked one, or is shorter, or when no entry of the marked segment lies
// before the mark and the entry before the segment is not the one its name
// says precedes it (older segments removed since). The caller then reads
// the marked segment itself, limited to the mark's size.
func (m *Mark) Last() (Position, bool) {
	if !m.known || m.bad || m.last.Seq+1 < m.seg.FirstSeq {
		return Position{}, false
	}
	return m.last, true
}

// begin prepares m for a replay of l that starts at offset start of
// segment from, the last entry before that point being pos.
func (m *Mark) begin(l *Log, from int, start int64, pos Position) {
	m.last, m.known, m.bad, m.idx = pos, false, false, -1
	for i, s := range l.segs {
		if s.Name == m.seg.Name {
			m.idx = i
		}
	}
	switch {
	case m.idx < 0 || l.segs[m.idx].Size < m.seg.Size:
		m.bad = true
	case from > m.idx || from == m.idx && start > m.seg.Size:
		m.bad = true // the walk starts after the mark
	}
}

// opened is called when the walk starts reading segment i from f (nil: a
// map whose file is not at hand): the marked segment must be the marked
// file, still at least as long.
func (m *Mark) opened(i int, f *os.File) {
	if i != m.idx || m.bad {
		return
	}
	if f == nil {
		m.bad = true
		return
	}
	fi, err := f.Stat()
	if err != nil || !os.SameFile(fi, m.file) || fi.Size() < m.seg.Size {
		m.bad = true
	}
}

// visit follows the walk: e, at offset off of segment seg, was applied.
func (m *Mark) visit(seg int, off int64, e *Entry) {
	if m.known || m.bad {
		return
	}
	if seg > m.idx || seg == m.idx && off+e.Size() > m.seg.Size {
		m.known = true // every entry before the mark was visited
		return
	}
	m.last = Position{Seq: e.Seq, TimestampNS: e.TimestampNS}
}

// end follows the walk's end, err being what it returned: a walk that
// ended cleanly (or in the torn tail of the newest segment, whose torn
// entry is no more complete at the mark) visited every entry before the
// mark, and so did one stopped by damage at or after the mark.
func (m *Mark) end(l *Log, err error) {
	if m.known || m.bad {
		return
	}
	if err == nil {
		m.known = m.idx >= 0
		return
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return
	}
	for i, s := range l.segs {
		if s.Name == ce.Segment && (i > m.idx || i == m.idx && ce.Offset >= m.seg.Size) {
			m.known = true
		}
	}
}
