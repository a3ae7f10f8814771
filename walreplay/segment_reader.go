package walreplay

import (
	"errors"
	"fmt"
	"io"
)

// Reader buffer sizes. The buffer starts small (fuzzing and tiny segments
// stay cheap), doubles while reads keep filling it up to readChunk (so big
// segments are read in 1 MiB syscalls), and beyond that grows only to fit a
// single entry, i.e. at most HeaderSize+MaxPayload bytes.
const (
	initialBuf = 4 << 10
	readChunk  = 1 << 20
)

// SegmentReader streams the entries of one segment from any io.Reader with
// bounded memory (one reused buffer of at most ~1 MiB, or one entry if
// bigger). It checks each entry on its own: magic, header fields, payload
// length and CRC. Rules between entries (sequence, timestamps, names) belong
// to the Log, which uses a validator on top of this reader.
type SegmentReader struct {
	r       io.Reader
	name    string
	buf     []byte
	pos     int   // start of unread bytes in buf
	end     int   // end of valid bytes in buf
	base    int64 // segment offset of buf[0]
	rerr    error // sticky error from r (io.EOF at its end)
	err     error // sticky error returned by Next
	off     int64 // offset of the entry Next last returned
	nextSeq uint64
	e       Entry
}

// NewSegmentReader reads the segment called name (used in errors and, when
// it is a valid segment name, to know the sequence expected first) from r.
func NewSegmentReader(r io.Reader, name string) *SegmentReader {
	sr := &SegmentReader{r: r, name: name}
	if s, err := ParseSegmentName(name); err == nil {
		sr.nextSeq = s
	}
	return sr
}

// Offset returns the byte offset of the entry Next last returned.
func (r *SegmentReader) Offset() int64 { return r.off }

// End returns the offset just past the last entry Next returned, which is
// where a torn tail starts.
func (r *SegmentReader) End() int64 { return r.base + int64(r.pos) }

// Name returns the segment name given to NewSegmentReader.
func (r *SegmentReader) Name() string { return r.name }

// Next returns the next entry. The entry and its Payload alias the reader's
// buffer and are valid only until the following call. At a clean end it
// returns io.EOF. When the segment ends inside an entry, or its last entry
// fails its CRC, it returns a *CorruptError wrapping ErrTornTail whose
// Offset is where the torn entry starts. Other damage is a *CorruptError
// wrapping ErrCorrupt. Errors are sticky.
func (r *SegmentReader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	return e, nil
}

func (r *SegmentReader) next() (*Entry, error) {
	start := r.End()
	if !r.fill(HeaderSize) {
		avail := r.end - r.pos
		if r.rerr != io.EOF {
			return nil, fmt.Errorf("segment %s offset %d: %w", r.name, start+int64(avail), r.rerr)
		}
		if avail == 0 {
			return nil, io.EOF
		}
		var m [4]byte
		le.PutUint32(m[:], Magic)
		k := min(avail, 4)
		for i := 0; i < k; i++ {
			if r.buf[r.pos+i] != m[i] {
				return nil, r.corrupt(start, r.nextSeq, "bad magic in final %d bytes", avail)
			}
		}
		return nil, r.torn(start, r.nextSeq, "incomplete header (%d of %d bytes)", avail, HeaderSize)
	}
	h, reason := DecodeHeader(r.buf[r.pos : r.pos+HeaderSize])
	if reason != "" {
		seq := h.Seq
		if h == (Header{}) { // bad magic: the header cannot be trusted
			seq = r.nextSeq
		}
		return nil, r.corrupt(start, seq, "%s", reason)
	}
	total := HeaderSize + int(h.PayloadLen)
	if !r.fill(total) {
		if r.rerr != io.EOF {
			return nil, fmt.Errorf("segment %s offset %d: %w", r.name, r.base+int64(r.end), r.rerr)
		}
		return nil, r.torn(start, h.Seq, "incomplete entry (%d of %d bytes)", r.end-r.pos, total)
	}
	hdr := r.buf[r.pos : r.pos+HeaderSize]
	payload := r.buf[r.pos+HeaderSize : r.pos+total : r.pos+total]
	if got := entryCRC(hdr, payload); got != h.CRC {
		r.pos += total
		if r.fill(1) {
			return nil, r.corrupt(start, h.Seq, "crc mismatch (stored 0x%08x, computed 0x%08x)", h.CRC, got)
		}
		if r.rerr != io.EOF {
			return nil, fmt.Errorf("segment %s offset %d: %w", r.name, r.base+int64(r.end), r.rerr)
		}
		return nil, r.torn(start, h.Seq, "crc mismatch in last entry (stored 0x%08x, computed 0x%08x)", h.CRC, got)
	}
	r.pos += total
	r.off = start
	r.nextSeq = h.Seq + 1
	r.e = Entry{Seq: h.Seq, TimestampNS: h.TimestampNS, Type: h.Type, Flags: h.Flags, Payload: payload}
	return &r.e, nil
}

func (r *SegmentReader) corrupt(off int64, seq uint64, format string, a ...any) error {
	return &CorruptError{Segment: r.name, Offset: off, Seq: seq, Reason: fmt.Sprintf(format, a...), Err: ErrCorrupt}
}

func (r *SegmentReader) torn(off int64, seq uint64, format string, a ...any) error {
	return &CorruptError{Segment: r.name, Offset: off, Seq: seq, Reason: "torn tail: " + fmt.Sprintf(format, a...), Err: ErrTornTail}
}

// fill makes at least n unread bytes available in buf[pos:end], reading as
// much as fits per call. It reports false when the source ends (or fails,
// see rerr) first.
func (r *SegmentReader) fill(n int) bool {
	for r.end-r.pos < n {
		if r.rerr != nil {
			return false
		}
		if r.end == len(r.buf) {
			r.makeRoom(n)
		}
		k, err := r.r.Read(r.buf[r.end:])
		r.end += k
		if err != nil {
			r.rerr = err
		} else if k == 0 {
			// A reader returning 0, nil forever would spin; treat it as
			// io.ErrNoProgress after a few tries like bufio does.
			r.rerr = r.retry()
		}
	}
	return true
}

// retry re-reads a few times after a (0, nil) read.
func (r *SegmentReader) retry() error {
	for i := 0; i < 100; i++ {
		k, err := r.r.Read(r.buf[r.end:])
		r.end += k
		if k > 0 || err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// makeRoom frees space at the end of buf for a pending need of n unread
// bytes: it grows the buffer while it is below readChunk or too small for n,
// and otherwise slides the unread bytes to the front.
func (r *SegmentReader) makeRoom(n int) {
	unread := r.end - r.pos
	size := len(r.buf)
	switch {
	case size == 0:
		size = initialBuf
	case size < readChunk:
		size *= 2
	}
	if size < n {
		// Grow for one big entry, but not past the data seen so far times
		// two: a header claiming 64 MiB followed by 10 bytes costs little.
		size = min(n, max(2*len(r.buf), 2*unread, initialBuf))
	}
	if size > len(r.buf) {
		nb := make([]byte, size)
		copy(nb, r.buf[r.pos:r.end])
		r.buf = nb
	} else {
		copy(r.buf, r.buf[r.pos:r.end])
	}
	r.base += int64(r.pos)
	r.end = unread
	r.pos = 0
}

// isTorn reports whether err is a torn tail.
func isTorn(err error) bool { return errors.Is(err, ErrTornTail) }

// skip tells a fresh reader that its source begins at segment offset start
// (the caller seeked it there), with nextSeq expected there.
func (r *SegmentReader) skip(start int64, nextSeq uint64) {
	r.base = start
	r.nextSeq = nextSeq
}
