package restore

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/repo/directio"
	"memento/repo/slabmem"
)

// Restored files are written front to back through an aligned buffer in
// large writes, with O_DIRECT where the filesystem takes it. Going around
// the page cache matters on a restore: the data is not read again soon, and
// on a VM the page cache's bookkeeping and the writeback at the end cost
// more CPU than the decryption (writing 1 GiB buffered and syncing costs
// about 3 s of system time on the benchmark machine, with O_DIRECT 0.3 s).
// Every write is a whole number of aligned blocks; the last block is padded
// with zeros and the file truncated to its size at the end. Runs of whole
// zero blocks are skipped, so holes stay holes. Where O_DIRECT is refused
// (tmpfs, some network filesystems) the same writes go through the page
// cache.

const (
	writeAlign   = directio.Align // O_DIRECT alignment of offsets, lengths and memory
	writeBufSize = 4 << 20        // bytes per write
)

// fileWriter writes one new file in order. One write is in flight while
// the next buffer fills: with O_DIRECT a write returns only once the device
// has the data, and the restore should hash and copy meanwhile.
type fileWriter struct {
	f      *os.File
	path   string
	direct bool
	mem    *[]byte // pooled backing of both buffers, or
	own    []byte  // their backing from a slabmem.Mem
	from   *slabmem.Mem
	buf    []byte     // aligned; holds the file's bytes [base, base+len(buf))
	spare  []byte     // the other buffer, being written while done != nil
	base   int64      // file offset of buf[0], a multiple of writeAlign
	dirty  bool       // buf holds data, not only zeros of a skip
	done   chan error // the result of the write in flight, if any
}

// createFileWriter creates path (which must not exist), 0600 until the
// caller sets its mode, for size bytes (a hint for the buffer size). Its
// buffers come from mem (nil: the heap's pools).
func createFileWriter(path string, direct bool, size int64, mem *slabmem.Mem) (*fileWriter, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	w := &fileWriter{path: path}
	fd, err := unix.Open(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	w.f = os.NewFile(uintptr(fd), path)
	w.direct = direct && directio.Enable(w.f)
	// Two buffers of up to writeBufSize, no larger than the file: a
	// restore of many small files must not zero megabytes for each.
	bs := int(min(writeBufSize, max(writeAlign, alignUp(size))))
	if b := mem.Get(2 * bs); b != nil { // aligned: carved to its size
		w.own, w.from = b, mem
		w.buf = b[:0:bs]
		w.spare = b[bs : bs : 2*bs]
		return w, nil
	}
	// Pooled buffers of a MiB or more are whole heap pages, aligned in
	// practice; one that is not is replaced by a larger one cut to
	// alignment. Only O_DIRECT needs the alignment.
	w.mem = chunk.Buffer(2 * bs)
	m := (*w.mem)[:2*bs]
	if w.direct && uintptr(unsafe.Pointer(&m[0]))&(writeAlign-1) != 0 {
		chunk.PutBuffer(w.mem)
		big := make([]byte, 2*bs+writeAlign)
		w.mem = &big
		skew := writeAlign - int(uintptr(unsafe.Pointer(&big[0]))&(writeAlign-1))
		m = big[skew : skew+2*bs]
	}
	w.buf = m[:0:bs]
	w.spare = m[bs : bs : 2*bs]
	return w, nil
}

// write appends data to the file.
func (w *fileWriter) write(data []byte) error { return w.put(data, true) }

// put appends data; dirty says it is data to write, not zeros of a skip.
func (w *fileWriter) put(data []byte, dirty bool) error {
	for len(data) > 0 {
		n := copy(w.buf[len(w.buf):cap(w.buf)], data)
		w.buf = w.buf[:len(w.buf)+n]
		w.dirty = w.dirty || dirty
		data = data[n:]
		if len(w.buf) == cap(w.buf) {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// putZeros appends n zero bytes without making the buffer dirty.
func (w *fileWriter) putZeros(n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroPage)))
		if err := w.put(zeroPage[:k], false); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// skip appends n zero bytes. Blocks holding nothing else are not written,
// so they stay holes.
func (w *fileWriter) skip(n int64) error {
	off := w.base + int64(len(w.buf))
	lo, hi := alignUp(off), (off+n)&^(writeAlign-1)
	if hi <= lo {
		return w.putZeros(n) // no whole block to skip
	}
	if err := w.putZeros(lo - off); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	w.base = hi
	return w.putZeros(off + n - hi)
}

// flush starts writing the buffer, which ends on a block boundary (or is
// padded to one by finish), and continues in the other buffer once the
// previous write is done.
func (w *fileWriter) flush() error {
	if !w.dirty { // zeros only: leave them unwritten, a hole
		w.base += int64(len(w.buf))
		w.buf = w.buf[:0]
		return nil
	}
	if err := w.wait(); err != nil {
		return err
	}
	b, off := w.buf, w.base
	done := make(chan error, 1)
	w.done = done
	go func() { done <- w.writeData(b, off) }()
	w.base += int64(len(b))
	w.buf, w.spare = w.spare[:0], b
	w.dirty = false
	return nil
}

// wait waits for the write in flight.
func (w *fileWriter) wait() error {
	if w.done == nil {
		return nil
	}
	err := <-w.done
	w.done = nil
	return err
}

// holeMin is the shortest run of zeros within the data written (whole
// aligned blocks) that writeData leaves unwritten, a hole. A chunk of a
// sparse image often holds a little data and much of a hole (content-
// defined boundaries fall anywhere, and the 512 KiB to 8 MiB chunks of a
// hole are cut around the blocks written in it): written whole, the test
// image of docs/benchmarks.md, "Issue 18, session 22" (290 MiB of data in
// 4 GiB) came back with 600 MiB allocated. Shorter runs are written: a
// page file's few empty pages would otherwise cost a write each and a
// fragmented file.
const holeMin = 64 << 10

// writeData writes b (whole aligned blocks) at off, but for its runs of at
// least holeMin bytes of zeros, which the file, created empty, holds as
// holes. A block's zero test stops at its first non-zero byte: data costs
// a few bytes of comparison per block.
func (w *fileWriter) writeData(b []byte, off int64) error {
	start := 0 // b[start:i] is data to write
	for i := 0; i < len(b); {
		j := i
		for j < len(b) && chunk.IsZero(b[j:j+writeAlign]) {
			j += writeAlign
		}
		if j-i < holeMin {
			i = j + writeAlign
			continue
		}
		if i > start {
			if err := w.writeAt(b[start:i], off+int64(start)); err != nil {
				return err
			}
		}
		start, i = j, j
	}
	if start >= len(b) {
		return nil
	}
	return w.writeAt(b[start:], off+int64(start))
}

func (w *fileWriter) writeAt(b []byte, off int64) error {
	n, err := w.f.WriteAt(b, off)
	if err != nil && w.direct && n == 0 && directio.Refused(err) {
		// Some filesystems accept O_DIRECT at open and refuse the writes.
		if err = directio.Disable(w.f); err == nil {
			w.direct = false
			_, err = w.f.WriteAt(b, off)
		}
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", w.path, err)
	}
	return nil
}

// finish writes what is buffered and sets the file's size; the file stays
// open for the caller's chmod. Like the rest of the restored tree it is not
// fsynced one by one: the staging directory is put on disk as a whole
// (staging.sync) before it is swapped into place.
func (w *fileWriter) finish(size int64) error {
	if l := len(w.buf); l > 0 {
		pad := int(alignUp(int64(l))) - l
		w.buf = append(w.buf, zeroPage[:pad]...) // within cap: buffer sizes are aligned
		if err := w.flush(); err != nil {
			return err
		}
	}
	if err := w.wait(); err != nil {
		return err
	}
	if err := w.f.Truncate(size); err != nil { // cuts the padding; a trailing hole too
		return fmt.Errorf("restore %s: %w", w.path, err)
	}
	return nil
}

// close releases the file and the buffer; it may be called again.
func (w *fileWriter) close() error {
	_ = w.wait() // the buffers go back to the pool: no write may still use them
	if w.mem != nil {
		chunk.PutBuffer(w.mem)
		w.mem, w.buf, w.spare = nil, nil, nil
	}
	if w.own != nil {
		w.from.Put(w.own)
		w.own, w.buf, w.spare = nil, nil, nil
	}
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

func alignUp(n int64) int64 { return (n + writeAlign - 1) &^ (writeAlign - 1) }
