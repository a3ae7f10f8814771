package directio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"
)

// Align is the alignment O_DIRECT needs for buffer addresses, file offsets
// and lengths; 4 KiB satisfies every block device Linux supports.
const Align = 4096

// BufferSize is how much a Writer gathers before one write: large enough
// that a 16 MiB pack takes four system calls.
const BufferSize = 4 << 20

// MinSize is the file size from which O_DIRECT pays: below it the setup
// (one more fcntl, one more write for the tail) is not worth it.
const MinSize = 1 << 20

var bufPool = sync.Pool{New: func() any {
	b := Alloc(BufferSize)
	return &b
}}

// Alloc returns a zeroed buffer of length and capacity n whose first byte is
// Align-aligned, as O_DIRECT needs. A Writer writes such a buffer (or any
// aligned slice) without copying it first (see Write).
func Alloc(n int) []byte {
	b := make([]byte, n+Align)
	off := alignOffset(b)
	return b[off : off+n : off+n]
}

// alignOffset is how many bytes b's start is before the next Align boundary.
func alignOffset(b []byte) int {
	if cap(b) == 0 {
		return 0
	}
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (Align - 1))
	if off != 0 {
		off = Align - off
	}
	return off
}

// aligned reports whether p starts on an Align boundary.
func aligned(p []byte) bool { return len(p) > 0 && alignOffset(p) == 0 }

// Writer writes a file sequentially from offset 0 in aligned blocks. It must
// be closed (Close) to write the last bytes; it never closes or syncs the
// file itself. Not safe for concurrent use.
type Writer struct {
	f *os.File
	// buf gathers what is not written where it lies. It is taken when
	// first needed: a pack in an aligned buffer (Alloc) needs none but for
	// its last partial block, which goes to small, and a BufferSize buffer
	// from bufPool per pack was 4 MiB allocated and zeroed again whenever a
	// garbage collection had emptied the pool (3 % of a first backup's CPU).
	buf    *[]byte
	small  bool  // buf is a one-block buffer, not one of bufPool's
	n      int   // bytes gathered in buf
	off    int64 // file offset of buf[0]
	direct bool  // O_DIRECT is set on f
	closed bool
	err    error
}

// NewWriter returns a Writer for f, a regular file opened for writing and
// positioned at offset 0 (a new or truncated file). It turns O_DIRECT on when
// the file system supports it.
func NewWriter(f *os.File) *Writer {
	return &Writer{f: f, direct: setDirect(f, true) == nil}
}

// grow makes sure buf exists and, when need bytes do not fit one block,
// that it is a BufferSize one (keeping what is gathered).
func (w *Writer) grow(need int) {
	switch {
	case w.buf == nil && need <= Align:
		b := Alloc(Align)
		w.buf, w.small = &b, true
	case w.buf == nil:
		w.buf = bufPool.Get().(*[]byte)
	case w.small && need > Align:
		b := bufPool.Get().(*[]byte)
		copy(*b, (*w.buf)[:w.n])
		w.buf, w.small = b, false
	}
}

// Enable turns O_DIRECT on for f, an open regular file, and reports whether
// the file system took it. Callers with their own buffering (the restorer's
// file writer) use Enable, Disable and Refused; everyone else uses Writer.
func Enable(f *os.File) bool { return setDirect(f, true) == nil }

// Disable turns O_DIRECT off again, e.g. after Refused.
func Disable(f *os.File) error { return setDirect(f, false) }

// Refused reports whether a write failed because the file system accepted
// O_DIRECT at open but refuses direct writes (EINVAL); the same write then
// succeeds through the page cache after Disable.
func Refused(err error) bool { return isInvalid(err) }

// Direct reports whether the Writer is bypassing the page cache.
func (w *Writer) Direct() bool { return w.direct }

var errClosed = errors.New("directio: write after Close")

// Write gathers p and writes every full buffer. An aligned p (Alloc) written
// while nothing is gathered goes to the file where it lies, all but its last
// partial block: a pack is then written without being copied into the
// Writer's buffer first (0.9 GB of copying in a first backup of 1 GiB).
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errClosed
	}
	written := 0
	if head := len(p) &^ (Align - 1); w.n == 0 && head > 0 && aligned(p) {
		if err := w.writeAt(p[:head]); err != nil {
			return 0, err
		}
		p, written = p[head:], head
	}
	if len(p) > 0 {
		w.grow(w.n + len(p))
	}
	for len(p) > 0 {
		c := copy((*w.buf)[w.n:], p)
		w.n += c
		p = p[c:]
		written += c
		if w.n == len(*w.buf) {
			if err := w.flush(w.n); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// ReadFrom reads r to its end straight into the Writer's buffer, sparing the
// copy io.Copy would make.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errClosed
	}
	w.grow(BufferSize)
	var total int64
	for {
		m, err := r.Read((*w.buf)[w.n:])
		w.n += m
		total += int64(m)
		if w.n == len(*w.buf) {
			if ferr := w.flush(w.n); ferr != nil {
				return total, ferr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close writes what is left: its aligned part directly, the tail through the
// page cache. The file stays open; the caller syncs and closes it.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	defer func() {
		if w.buf != nil && !w.small {
			bufPool.Put(w.buf)
		}
		w.buf = nil
	}()
	if w.err != nil {
		return w.err
	}
	if head := w.n &^ (Align - 1); head > 0 {
		if err := w.flush(head); err != nil {
			return err
		}
	}
	if w.n == 0 {
		return nil
	}
	if w.direct {
		if err := setDirect(w.f, false); err != nil {
			w.err = fmt.Errorf("%s: clear O_DIRECT: %w", w.f.Name(), err)
			return w.err
		}
		w.direct = false
	}
	return w.flush(w.n)
}

// flush writes the first n bytes of the buffer at w.off and moves the rest
// (when n is less than w.n) to the buffer's start. With O_DIRECT on, n is a
// multiple of Align; a file system that refuses the direct write (EINVAL)
// gets the same bytes through the page cache from then on.
func (w *Writer) flush(n int) error {
	if err := w.writeAt((*w.buf)[:n]); err != nil {
		return err
	}
	w.n = copy(*w.buf, (*w.buf)[n:w.n])
	return nil
}

// writeAt writes b, aligned and a multiple of Align long while O_DIRECT is
// on, at w.off and advances w.off.
func (w *Writer) writeAt(b []byte) error {
	_, err := w.f.WriteAt(b, w.off)
	if err != nil && w.direct && isInvalid(err) {
		w.direct = false
		if err = setDirect(w.f, false); err == nil {
			_, err = w.f.WriteAt(b, w.off)
		}
	}
	if err != nil {
		w.err = err
		return err
	}
	w.off += int64(len(b))
	return nil
}
