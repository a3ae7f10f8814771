package walreplay

import (
	"bytes"
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
// block mblk of the zero-copy State given to walk, so the bytes of e (read
// into the walk's buffer, which e.Payload aliases) lie in that map at off.
type visitFunc func(seg int, off int64, e *Entry, mblk int) error

var errStop = errors.New("stop")

// walk reads segments from index from on, validates every entry with v and
// hands it to fn (which may stop the walk with errStop). A torn tail of the
// newest segment ends the walk and is reported as torn (with its location);
// a torn tail of any other segment is corruption.
// zc, when a zero-copy State, has each segment mapped into it for its
// records to refer to (the walk itself still reads the file).
//
// start, when not 0, is the offset in segment from at which reading begins,
// with v already positioned there (a resumed replay, resume.go).
//
// mk, if not nil, is told which file each segment is read from (Mark).
func (l *Log) walk(ctx context.Context, from int, start int64, v *validator, zc *State, mk *Mark, fn visitFunc) (torn *CorruptError, err error) {
	// One buffer for every segment's reader: readChunk, or less when the
	// segments are all smaller (one byte more than the largest, so that
	// reading a whole segment leaves room to see its end without growing).
	size := int64(initialBuf)
	for _, seg := range l.segs[min(from, len(l.segs)):] {
		size = max(size, seg.Size+1)
	}
	buf := make([]byte, min(size, readChunk))
	// A zero-copy replay from the start reserves room for the records of
	// the rest of the WAL once it has walked reserveAfter bytes of it, by
	// the records per byte so far (State.reserve), and again when that
	// room runs low; at most reserveGrowth times the slots it has each
	// time, since the records per byte of the start may be many times
	// those of the rest (an import, then updates of the same ids).
	reserve := zc != nil && from == 0 && start == 0 && len(zc.slots) == 0
	var walked int64
	for i := from; i < len(l.segs); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var off int64
		if i == from {
			off = start
		}
		torn, stop, err := l.walkSegment(ctx, i, off, v, zc, mk, buf, fn)
		if err != nil || stop || torn != nil {
			return torn, err
		}
		walked += l.segs[i].Size
		if reserve && walked >= reserveAfter && i+1 < len(l.segs) && cap(zc.slots)-len(zc.slots) < len(zc.slots)/2 {
			n := len(zc.slots)
			var rest int64
			for _, seg := range l.segs[i+1:] {
				rest += seg.Size
			}
			more := min(int(float64(n)*float64(rest)/float64(walked)), reserveGrowth*n)
			if more >= n/2 { // less: append's growth is as good
				zc.reserve(more)
			}
		}
	}
	return nil, nil
}

// reserveAfter is how much of a WAL a replay from the start walks before it
// reserves room for the rest's records (walk): enough records to tell their
// size from.
const reserveAfter = 1 << 20

// reserveGrowth bounds one reserve (walk) to this many times the slots the
// state has: a WAL of 10 GiB whose first segment holds every id and the rest
// updates of them would otherwise reserve slots and map room for every
// record of the WAL (some 70 bytes each: 25 MiB of heap for 20,000 ids in
// 218 MiB of WAL, TestZeroCopyReplayReserveIsBounded).
const reserveGrowth = 3

// walkSegment walks segment i (from offset start) with a reader that reads
// into buf. For a zero-copy State the segment is also mapped, but only as
// the place its records will refer to: the walk reads the mapped file (the
// very descriptor, or a duplicate of it) with pread, not through the map,
// and limited to the map's length, so every entry it accepts lies inside
// the map and its bytes are the map's. Checksumming through a fresh map
// costs a page fault per page (2.9 GB/s of CRC32C on the reference VM,
// against 9.7 GB/s reading into a reused buffer; docs/benchmarks.md, issue
// 18 session 16), and the pages faulted in had to be dropped again to keep
// them out of the resident set.
func (l *Log) walkSegment(ctx context.Context, i int, start int64, v *validator, zc *State, mk *Mark, buf []byte, fn visitFunc) (torn *CorruptError, stop bool, err error) {
	seg := l.segs[i]
	newest := i == len(l.segs)-1
	f, r, err := l.openSegment(i)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	mblk := -1
	read := f // the file whose bytes the walk checks (nil: a map's, whose file is not kept)
	if zc != nil {
		var data []byte
		src := io.ReaderAt(f)
		if zc.resumeSeg == i+1 {
			// Mapped by State.load, from a descriptor since closed: the
			// file now under the segment's name may be another. Read the
			// duplicate kept of the mapped one, or the map itself when
			// none is kept.
			mblk, data = zc.resumeBlk, zc.blocks[zc.resumeBlk].b
			zc.resumeSeg = 0
			if kept := zc.maps.file(int(zc.blocks[mblk].mapped - 1)); kept != nil {
				src, read = kept, kept
			} else {
				src, read = bytes.NewReader(data), nil
			}
		} else {
			mblk, data = zc.mapSegment(f, seg.Size, i)
		}
		if mblk >= 0 {
			defer zc.doneWithMap(mblk)
			r = io.NewSectionReader(src, start, max(int64(len(data))-start, 0))
		}
	}
	if start > 0 && mblk < 0 {
		if _, err := f.Seek(start, io.SeekStart); err != nil {
			return nil, false, fmt.Errorf("walreplay: %w", err)
		}
		r = io.LimitReader(f, seg.Size-start)
	}
	if mk != nil {
		mk.opened(i, read)
	}
	sr := NewSegmentReader(r, seg.Name)
	sr.buf = buf
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
	}
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
	torn, err := l.walk(ctx, 0, 0, v, nil, nil, func(seg int, off int64, e *Entry, _ int) error {
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
