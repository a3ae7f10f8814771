package walreplay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// firstHeader reads the header of segment i's first entry. ok is false when
// the segment holds no complete header (only legitimate for the newest).
func (l *Log) firstHeader(i int) (h Header, ok bool, err error) {
	return l.headerAt(i, 0)
}

// headerAt reads the header of the entry at offset off of segment i. ok is
// false when the segment holds no complete header there.
func (l *Log) headerAt(i int, off int64) (h Header, ok bool, err error) {
	seg := l.segs[i]
	if seg.Size < off+HeaderSize {
		return h, false, nil
	}
	f, err := os.Open(seg.Path)
	if err != nil {
		return h, false, fmt.Errorf("walreplay: %w", err)
	}
	defer f.Close()
	var b [HeaderSize]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return h, false, fmt.Errorf("walreplay: segment %s: %w", seg.Name, err)
	}
	h, reason := DecodeHeader(b[:])
	if reason != "" {
		return h, false, &CorruptError{Segment: seg.Name, Offset: off, Seq: seg.FirstSeq, Reason: reason, Err: ErrCorrupt}
	}
	return h, true, nil
}

// Holds reports whether the log has an entry of sequence seq written at
// ts: the same point of the same history (after a restore to an earlier
// point, the entry of that sequence the database writes again has another
// timestamp). A log that ends before seq does not hold it.
func (l *Log) Holds(ctx context.Context, seq uint64, ts int64) (bool, error) {
	i, off, err := l.SeekSeq(ctx, seq)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	h, ok, err := l.headerAt(i, off)
	if err != nil || !ok {
		return false, err
	}
	return h.Seq == seq && h.TimestampNS == ts, nil
}

// SeekSeq finds the first entry with sequence >= seq: its segment index and
// byte offset. Segments are named by their first sequence, so the segment
// is found from the names alone; only that segment is read, up to the
// entry. It returns an error wrapping ErrNotFound when seq is past the end.
func (l *Log) SeekSeq(ctx context.Context, seq uint64) (seg int, off int64, err error) {
	// i = the last segment whose name is <= seq.
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].FirstSeq > seq }) - 1
	if i < 0 {
		return l.firstEntryFrom(0)
	}
	return l.scanFor(ctx, i, func(e *Entry) bool { return e.Seq >= seq }, fmt.Sprintf("sequence %d", seq))
}

// SeekTime finds the first entry with timestamp_ns >= ts: its segment index
// and byte offset. It binary-searches the segments by the timestamp of their
// first entry (one 32-byte header read per probe), then scans the one
// segment that can hold the answer. Timestamps are non-decreasing, so
// entries sharing ts that straddle a segment boundary are handled: the
// answer is the first of them. ErrNotFound when every entry is before ts.
func (l *Log) SeekTime(ctx context.Context, ts int64) (seg int, off int64, err error) {
	var serr error
	// j = the first segment whose first entry has timestamp >= ts; a segment
	// without entries (only the newest may be empty) counts as +infinity.
	j := sort.Search(len(l.segs), func(i int) bool {
		if serr != nil {
			return true
		}
		h, ok, err := l.firstHeader(i)
		if err != nil {
			serr = err
			return true
		}
		return !ok || h.TimestampNS >= ts
	})
	if serr != nil {
		return 0, 0, serr
	}
	if j == 0 {
		return l.firstEntryFrom(0)
	}
	return l.scanFor(ctx, j-1, func(e *Entry) bool { return e.TimestampNS >= ts }, "time "+FormatTime(ts))
}

// firstEntryFrom returns the position of the first entry in segment i or
// later.
func (l *Log) firstEntryFrom(i int) (int, int64, error) {
	for ; i < len(l.segs); i++ {
		if l.segs[i].Size >= HeaderSize {
			return i, 0, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: log %s has no entries", ErrNotFound, l.dir)
}

// scanFor reads segment i for the first entry satisfying match; if none
// does, the answer is the first entry of a later segment.
func (l *Log) scanFor(ctx context.Context, i int, match func(*Entry) bool, what string) (int, int64, error) {
	f, r, err := l.openSegment(i)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sr := NewSegmentReader(r, l.segs[i].Name)
	for n := 0; ; n++ {
		if n&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return 0, 0, err
			}
		}
		e, err := sr.Next()
		if err == io.EOF || err != nil && errors.Is(err, ErrTornTail) && i == len(l.segs)-1 {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		if match(e) {
			return i, sr.Offset(), nil
		}
	}
	s, o, err := l.firstEntryFrom(i + 1)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: no entry at or after %s in %s", ErrNotFound, what, l.dir)
	}
	return s, o, nil
}
