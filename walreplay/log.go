package walreplay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Log is a WAL directory as it was when OpenLog listed it: its segments in
// sequence order. Each segment is read up to the size it had then, so a log
// being appended to by a live database is seen as a consistent snapshot
// (whatever the writer has half-written is a torn tail of the newest
// segment, which ends the log silently).
type Log struct {
	dir  string
	segs []SegmentInfo
}

// OpenLog lists the segments of dir. It reads no entries.
func OpenLog(dir string) (*Log, error) {
	segs, err := ListSegments(dir)
	if err != nil {
		return nil, err
	}
	return &Log{dir: dir, segs: segs}, nil
}

// Dir returns the directory the log was opened on.
func (l *Log) Dir() string { return l.dir }

// Segments returns the segments in sequence order (a copy).
func (l *Log) Segments() []SegmentInfo { return append([]SegmentInfo(nil), l.segs...) }

// Summary describes a verified log (or segment).
type Summary struct {
	Segments  int
	Entries   int64
	FirstSeq  uint64 // of the first entry (0 if none)
	LastSeq   uint64 // of the last complete entry
	FirstTS   int64
	LastTS    int64
	TornTail  bool  // the newest segment ends in a torn tail (ignored)
	Bytes     int64 // bytes of complete entries, the torn tail excluded
	Compacted int   // compacted segments
	// TornSegment and TornOffset locate the torn tail when TornTail is set.
	TornSegment string
	TornOffset  int64
}

// openSegment opens segment i, limited to its listed size.
func (l *Log) openSegment(i int) (*os.File, io.Reader, error) {
	f, err := os.Open(l.segs[i].Path)
	if err != nil {
		return nil, nil, fmt.Errorf("walreplay: %w", err)
	}
	return f, io.LimitReader(f, l.segs[i].Size), nil
}

// visitFunc is called for each entry the segment reader accepts; returning
// errStop ends the walk. mblk >= 0 says the segment is memory-mapped as
// block mblk of the zero-copy State given to walk, so e.Payload lies in it.
type visitFunc func(seg int, off int64, e *Entry, mblk int) error

var errStop = errors.New("stop")

// walk reads segments from index from on, validates every entry with v and
// hands it to fn (which may stop the walk with errStop). A torn tail of the
// newest segment ends the walk and is reported as torn (with its location);
// a torn tail of any other segment is corruption.
// zc, when a zero-copy State, has segments mapped into it instead of read.
//
// start, when not 0, is the offset in segment from at which reading begins,
// with v already positioned there (a resumed replay, resume.go).
func (l *Log) walk(ctx context.Context, from int, start int64, v *validator, zc *State, fn visitFunc) (torn *CorruptError, err error) {
	for i := from; i < len(l.segs); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var off int64
		if i == from {
			off = start
		}
		torn, stop, err := l.walkSegment(ctx, i, off, v, zc, fn)
		if err != nil || stop || torn != nil {
			return torn, err
		}
	}
	return nil, nil
}

func (l *Log) walkSegment(ctx context.Context, i int, start int64, v *validator, zc *State, fn visitFunc) (torn *CorruptError, stop bool, err error) {
	seg := l.segs[i]
	newest := i == len(l.segs)-1
	f, r, err := l.openSegment(i)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if start > 0 {
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return nil, false, fmt.Errorf("walreplay: %w", err)
		}
		r = io.LimitReader(f, seg.Size-start)
	}
	sr, mblk := NewSegmentReader(r, seg.Name), -1
	var mapped []byte // the map sr walks, if any (dropWalked)
	if zc != nil {
		var data []byte
		if zc.resumeSeg == i+1 {
			mblk, data = zc.resumeBlk, zc.blocks[zc.resumeBlk].b
			zc.resumeSeg = 0
		} else {
			mblk, data = zc.mapSegment(f, seg.Size, i)
		}
		if mblk >= 0 {
			sr, mapped = newMappedSegmentReader(data, seg.Name), data
			defer zc.doneWithMap(mblk)
		}
	}
	dropped := 0 // mapped[:dropped] is out of the resident set
	if start > 0 {
		sr.skip(start, v.lastSeq+1)
	} else {
		v.startSegment(seg.Name, seg.FirstSeq)
	}
	for n := 0; ; n++ {
		if n&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return nil, false, err
			}
		}
		e, err := sr.Next()
		if err == io.EOF {
			return nil, false, v.endSegment(sr.End(), !newest)
		}
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) && ce.Err == ErrTornTail {
				if newest {
					return ce, false, nil
				}
				c := *ce
				c.Err, c.Reason = ErrCorrupt, "sealed segment ends in a "+c.Reason
				return nil, false, &c
			}
			return nil, false, err
		}
		if err := fn(i, sr.Offset(), e, mblk); err != nil {
			if err == errStop {
				return nil, true, nil
			}
			return nil, false, err
		}
		if mapped != nil {
			dropped = dropWalked(mapped, dropped, sr.Offset())
		}
	}
}

// walkDropStep is how much of a mapped segment a walk reads before it takes
// the pages it has read out of the process's resident set again.
const walkDropStep = 8 << 20

// dropWalked drops the pages of mapped from dropped up to the walkDropStep
// boundary at or below off (the entry just visited) once there are
// walkDropStep of them, and returns the new dropped. A walk reads each byte
// once: without it, a replay kept its whole current segment resident (up
// to 64 MiB) until doneWithMap, and backups ran their replays one at a
// time to bound that. Records in the dropped range still point into the
// map; their pages come back from the page cache on use.
func dropWalked(mapped []byte, dropped int, off int64) int {
	to := int(off) &^ (walkDropStep - 1)
	if to-dropped < walkDropStep {
		return dropped
	}
	dropPages(mapped[dropped:to])
	return to
}

// Verify reads and validates every entry of every segment (CRCs, headers,
// payloads, sequence continuity, timestamps, names, compacted runs) and
// summarises the log. It stops at the first problem, returned as a
// *CorruptError (errors.Is ErrCorrupt or ErrGap) that names the segment,
// byte offset and sequence. A torn tail of the newest segment is not an
// error: it is reported in Summary.TornTail.
func (l *Log) Verify(ctx context.Context) (Summary, error) {
	sum := Summary{Segments: len(l.segs)}
	v := &validator{checkPayloads: true}
	lastSeg := -1
	torn, err := l.walk(ctx, 0, 0, v, nil, func(seg int, off int64, e *Entry, _ int) error {
		if err := v.check(off, e); err != nil {
			return err
		}
		if sum.Entries == 0 {
			sum.FirstSeq, sum.FirstTS = e.Seq, e.TimestampNS
		}
		if seg != lastSeg && e.Compacted() {
			sum.Compacted++
		}
		lastSeg = seg
		sum.Entries++
		sum.LastSeq, sum.LastTS = e.Seq, e.TimestampNS
		sum.Bytes += e.Size()
		return nil
	})
	if torn != nil {
		sum.TornTail, sum.TornSegment, sum.TornOffset = true, torn.Segment, torn.Offset
	}
	return sum, err
}

// VerifySegment validates one segment on its own, read from r: entries,
// sequence continuity inside it, timestamps, the name against the first
// entry, and the compacted-run rules. A torn tail is reported in the
// summary, not as an error, since whether it is acceptable depends on
// whether the segment is the newest of its log.
func VerifySegment(ctx context.Context, r io.Reader, name string) (Summary, error) {
	first, err := ParseSegmentName(name)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Segments: 1}
	v := &validator{checkPayloads: true}
	v.startSegment(name, first)
	sr := NewSegmentReader(r, name)
	for n := 0; ; n++ {
		if n&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
		}
		e, err := sr.Next()
		if err == io.EOF {
			// Judge it as if sealed only when it has entries: an empty
			// segment is legitimate as the newest.
			return sum, v.endSegment(sr.End(), false)
		}
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) && ce.Err == ErrTornTail {
				sum.TornTail, sum.TornSegment, sum.TornOffset = true, ce.Segment, ce.Offset
				return sum, nil
			}
			return sum, err
		}
		if err := v.check(sr.Offset(), e); err != nil {
			return sum, err
		}
		if sum.Entries == 0 {
			sum.FirstSeq, sum.FirstTS = e.Seq, e.TimestampNS
			if e.Compacted() {
				sum.Compacted = 1
			}
		}
		sum.Entries++
		sum.LastSeq, sum.LastTS = e.Seq, e.TimestampNS
		sum.Bytes += e.Size()
	}
}
