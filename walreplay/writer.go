package walreplay

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultMaxSegmentSize is the rotation size used when WriterOptions leaves
// MaxSegmentSize at zero.
const DefaultMaxSegmentSize = 64 << 20

// WriterOptions configures a Writer.
type WriterOptions struct {
	// MaxSegmentSize: a new segment is started before an entry that would
	// make the current one larger (an entry bigger than this gets a segment
	// of its own). 0 means DefaultMaxSegmentSize.
	MaxSegmentSize int64
	// SyncEveryAppend fsyncs after every Append, as a database acknowledging
	// each write would. Otherwise data is durable after Sync, Close or a
	// rotation (sealed segments are always fsynced).
	SyncEveryAppend bool
	// BufferSize > 0 accumulates entries in memory up to that many bytes
	// before writing them; 0 writes each entry with one write(2) so that
	// concurrent readers (backups of a live data dir) see it at once.
	BufferSize int
	// NoSync never fsyncs, not even on rotation or Close: for tools that build
	// a data dir from scratch (engram-sim generate), where durability does not
	// matter and an fsync per rotation would make them as slow as the disk.
	NoSync bool
}

// Writer appends entries to a WAL directory, rotating segments at a size.
// It enforces the rules a reader checks (consecutive sequences, timestamps
// never going backwards, well-formed payloads, compacted runs in segments of
// their own), so whatever it writes verifies. Not safe for concurrent use.
type Writer struct {
	dir  string
	opts WriterOptions

	f         *os.File
	seg       string
	segSize   int64 // bytes in the segment, buffered ones included
	segN      int64 // entries in the segment
	segCompac bool  // the segment is a compacted run
	segMarked bool  // ... closed by its marker

	buf      []byte
	lastSeq  uint64
	lastTS   int64
	anchored bool  // lastSeq is known (a segment existed or an entry was written)
	err      error // sticky: after a failed write the file state is unknown
	closed   bool
}

var errClosed = errors.New("walreplay: writer is closed")

// OpenWriter opens dir (creating it) for appending. If segments exist, it
// validates the newest one and resumes after its last complete entry,
// cutting a torn tail off (what a crash leaves); any other damage in the
// newest segment is returned as an error and nothing is written.
func OpenWriter(dir string, opts WriterOptions) (*Writer, error) {
	if opts.MaxSegmentSize <= 0 {
		opts.MaxSegmentSize = DefaultMaxSegmentSize
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("walreplay: open writer: %w", err)
	}
	w := &Writer{dir: dir, opts: opts}
	segs, err := ListSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return w, nil
	}
	last := segs[len(segs)-1]
	w.anchored = true
	if err := w.resume(last); err != nil {
		return nil, err
	}
	if w.segN == 0 {
		w.lastSeq = last.FirstSeq - 1
		if len(segs) > 1 {
			// The newest segment is empty: the last timestamp is in the
			// previous one, which must be read to its end once.
			var prev Writer
			if err := prev.scan(segs[len(segs)-2], false); err != nil {
				return nil, err
			}
			w.lastTS = prev.lastTS
		}
	}
	f, err := os.OpenFile(last.Path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("walreplay: open writer: %w", err)
	}
	w.f, w.seg = f, last.Name
	return w, nil
}

// resume scans the newest segment and truncates a torn tail.
func (w *Writer) resume(seg SegmentInfo) error {
	return w.scan(seg, true)
}

// scan reads seg to its end, recording the last entry and the segment's
// shape; with cutTorn, a torn tail is truncated away (and fsynced).
func (w *Writer) scan(seg SegmentInfo, cutTorn bool) error {
	f, err := os.Open(seg.Path)
	if err != nil {
		return fmt.Errorf("walreplay: open writer: %w", err)
	}
	defer f.Close()
	r := NewSegmentReader(f, seg.Name)
	v := validator{checkPayloads: true}
	v.startSegment(seg.Name, seg.FirstSeq)
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !isTorn(err) || !cutTorn {
				return fmt.Errorf("walreplay: open writer: %w", err)
			}
			if err := truncate(seg.Path, r.End()); err != nil {
				return err
			}
			break
		}
		if err := v.check(r.Offset(), e); err != nil {
			return fmt.Errorf("walreplay: open writer: %w", err)
		}
		w.lastSeq, w.lastTS = e.Seq, e.TimestampNS
		w.segN++
		w.segCompac = v.compacted
		w.segMarked = v.marked
	}
	w.segSize = r.End()
	return nil
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("walreplay: cut torn tail: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("walreplay: cut torn tail of %s at %d: %w", filepath.Base(path), size, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("walreplay: cut torn tail: %w", err)
	}
	return f.Close()
}

// LastSeq returns the sequence of the last entry written (0 if none).
func (w *Writer) LastSeq() uint64 { return w.lastSeq }

// LastTimestamp returns the timestamp of the last entry written (0 if none).
func (w *Writer) LastTimestamp() int64 { return w.lastTS }

// Segment returns the name of the segment being appended to ("" if none yet).
func (w *Writer) Segment() string { return w.seg }

// Append writes one entry. e.Seq must be LastSeq()+1, except for COMPACTED
// entries, which may skip sequences (they form a compacted run: a segment of
// their own, closed by a COMPACTED Marker). The first entry of an empty
// directory may have any sequence >= 1. Timestamps must not go backwards.
func (w *Writer) Append(e *Entry) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.checkEntry(e); err != nil {
		return err
	}
	if err := w.maybeRotate(e); err != nil {
		return err
	}
	w.buf = AppendEntry(w.buf, e)
	w.segSize += e.Size()
	w.segN++
	if e.Compacted() {
		w.segCompac = true
		w.segMarked = e.Type == Marker
	}
	w.lastSeq, w.lastTS, w.anchored = e.Seq, e.TimestampNS, true
	if len(w.buf) >= w.opts.BufferSize {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.opts.SyncEveryAppend {
		return w.Sync()
	}
	return nil
}

func (w *Writer) usable() error {
	if w.closed {
		return errClosed
	}
	return w.err
}

func (w *Writer) checkEntry(e *Entry) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("walreplay: append seq %d: "+format, append([]any{e.Seq}, a...)...)
	}
	switch {
	case !e.Type.Valid():
		return bad("unknown entry type %d", uint16(e.Type))
	case e.Flags&^FlagCompacted != 0:
		return bad("reserved flag bits set (0x%04x)", e.Flags)
	case len(e.Payload) > MaxPayload:
		return bad("payload of %d bytes exceeds %d", len(e.Payload), MaxPayload)
	case e.Seq == 0:
		return bad("sequence 0 (sequences start at 1)")
	case e.TimestampNS < w.lastTS:
		return bad("timestamp %d before the previous %d", e.TimestampNS, w.lastTS)
	case e.Compacted() && e.Type != EpisodeStore && e.Type != Marker:
		return bad("compacted entry of type %s", e.Type)
	case e.Compacted() && (e.Seq < w.lastSeq || e.Seq == w.lastSeq && (e.Type != Marker || !w.segCompac)):
		return bad("compacted entry must have a sequence above %d (the closing marker may equal it)", w.lastSeq)
	case !e.Compacted() && w.anchored && e.Seq != w.lastSeq+1:
		return bad("expected sequence %d", w.lastSeq+1)
	case !e.Compacted() && w.segCompac && !w.segMarked:
		return bad("compacted run not closed by a COMPACTED marker")
	}
	if _, err := checkPayload(e.Type, e.Payload); err != nil {
		return bad("%w", err)
	}
	return nil
}

// maybeRotate starts a new segment when needed: none yet, the size limit,
// or a switch between a compacted run and ordinary entries.
func (w *Writer) maybeRotate(e *Entry) error {
	first := e.Seq
	if e.Compacted() && w.anchored {
		first = w.lastSeq + 1 // a compacted run is named by the first sequence it covers
	}
	switch {
	case w.f == nil:
	case w.segN == 0:
		return nil // empty segment (e.g. after a torn first entry) is named lastSeq+1: reuse it
	case e.Compacted() != w.segCompac:
	case e.Compacted() && w.segMarked: // a new compacted run after a closed one
	case !e.Compacted() && w.segSize+e.Size() > w.opts.MaxSegmentSize:
	default:
		return nil
	}
	if w.f != nil {
		if err := w.closeFile(!w.opts.NoSync); err != nil {
			return err
		}
	}
	name := SegmentName(first)
	f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return w.fail(err)
	}
	if !w.opts.NoSync {
		if err := syncDir(w.dir); err != nil {
			f.Close()
			return w.fail(err)
		}
	}
	w.f, w.seg, w.segSize, w.segN, w.segCompac, w.segMarked = f, name, 0, 0, false, false
	return nil
}

// closeFile flushes and closes the current segment, fsyncing it if sync.
func (w *Writer) closeFile(sync bool) error {
	if err := w.flush(); err != nil {
		return err
	}
	if sync {
		if err := w.f.Sync(); err != nil {
			return w.fail(err)
		}
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return w.fail(err)
	}
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("walreplay: segment %s: %w", w.seg, err)
	return w.err
}

// flush writes buffered entries to the file.
func (w *Writer) flush() error {
	if len(w.buf) == 0 || w.f == nil {
		return nil
	}
	_, err := w.f.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		return w.fail(err)
	}
	return nil
}

// Flush writes buffered entries to the file without fsyncing.
func (w *Writer) Flush() error {
	if err := w.usable(); err != nil {
		return err
	}
	return w.flush()
}

// Sync writes buffered entries and fsyncs the current segment.
func (w *Writer) Sync() error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	if w.f == nil {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(err)
	}
	return nil
}

// Close flushes, fsyncs and closes the writer.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	var err error
	if w.err == nil && w.f != nil {
		err = w.closeFile(!w.opts.NoSync)
	} else if w.f != nil {
		w.f.Close()
		err = w.err
	}
	w.closed = true
	return err
}

// AbandonMidEntry simulates a crash during an append: it writes buffered
// entries and only the first n bytes of e's encoding (0 < n < e.Size()),
// then closes the file without fsync. The writer is unusable afterwards,
// and the segment ends in a torn tail, which OpenWriter and Log handle as
// a crash leaves it. The entry is not checked against the sequence rules.
func (w *Writer) AbandonMidEntry(e *Entry, n int) error {
	if err := w.usable(); err != nil {
		return err
	}
	if n <= 0 || int64(n) >= e.Size() {
		return fmt.Errorf("walreplay: abandon mid-entry: n=%d not in 1..%d", n, e.Size()-1)
	}
	if err := w.maybeRotate(e); err != nil {
		return err
	}
	w.buf = AppendEntry(w.buf, e)
	w.buf = w.buf[:len(w.buf)-int(e.Size())+n]
	err := w.flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = w.fail(cerr)
	}
	w.f = nil
	w.closed = true
	return err
}

// syncDir fsyncs a directory so that a created or renamed name is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
