package restore

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/repo/directio"
)

// windowWriter writes one file (of directMinSize and more) whose blobs are
// opened straight into its write windows (repo.StreamOptions.Dest): the
// file is cut into windows of winBytes at aligned offsets, windowSlots of
// them open at once, each in an aligned slot of its own. A blob lying
// within an open window is decrypted and decompressed into its place
// there by whichever goroutine opens its run, so the runs of one file are
// opened on several goroutines at once and nothing is copied; a blob
// across two windows, or beyond the open ones, arrives in a buffer of its
// own and is copied into place in order (put). A window whose bytes have
// all been delivered is written by the file's writer goroutine, and its
// slot then opens the window windowSlots further on.
//
// Before issue 18's session 10 the plaintext of every blob waited in a
// pooled buffer of its own until the writer copied it into one of two
// 4 MiB write buffers (the copy alone 0.20 s of a 1 GiB data dir's 3.5 CPU
// s, the pooled buffers' allocation and zeroing 0.1 s more), and as that
// plaintext counted against the file's read-ahead (restoreAhead), one
// 4 MiB run of a warm tier was opened at a time: one core per file.
//
// Memory: windowSlots slots of 4 MiB per file (16 MiB, against two 4 MiB
// write buffers before), the plaintext of the blobs opened in place held
// nowhere else; restoreAhead still counts it (StreamOptions.AheadHeld), so
// the runs read ahead stay within the slots' reach and what arrives in a
// buffer of its own stays bounded as before.
//
// Holes stay holes: whole aligned blocks of zero chunks (never read,
// planFetch) or of chunks holding only zeros are not written; the last
// block is padded with zeros and the file truncated to its size.
type windowWriter struct {
	f      *os.File
	path   string
	direct bool
	size   int64
	win    int64     // bytes per window, a multiple of writeAlign
	mem    []*[]byte // pooled backing of the slots (nil: not pooled)
	slots  [][]byte  // window w lives in slots[w%len(slots)]

	mu       sync.Mutex
	cond     sync.Cond
	recycled int64 // windows [0, recycled) are written: windows below recycled+len(slots) are open
	werr     error // the first write error

	// The delivering goroutine's state (put, finish).
	pos   int64  // bytes delivered
	zeros []span // zero runs of the window being filled, in order, merged
	jobs  chan winJob
	done  chan struct{} // closed when the writer goroutine has ended
}

type span struct{ a, b int64 }

// winJob is a window to write: its slot, its file range and its holes.
type winJob struct {
	w      int64
	ws, we int64 // the bytes to write span [ws, we), we aligned
	zeros  []span
}

const (
	winBytes    = writeBufSize // bytes per window: one write each
	windowSlots = 4            // windows open at once per file
)

// createWindowWriter creates path (which must not exist), 0600 until the
// caller sets its mode, for a file of size bytes.
func createWindowWriter(path string, size int64) (*windowWriter, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Open(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
	}
	w := &windowWriter{path: path, size: size, f: os.NewFile(uintptr(fd), path)}
	w.cond.L = &w.mu
	w.direct = directio.Enable(w.f)
	w.win = min(winBytes, max(writeAlign, alignUp(size)))
	k := int(min(windowSlots, max(1, (size+w.win-1)/w.win)))
	for range k {
		w.slots = append(w.slots, w.slotMem(int(w.win)))
	}
	w.jobs = make(chan winJob, k)
	w.done = make(chan struct{})
	go w.writer(w.jobs)
	return w, nil
}

// slotMem returns an aligned slot of n bytes: a pooled buffer of its own
// (of a MiB or more they are whole heap pages, aligned in practice; one
// that is not is replaced by a larger one cut to alignment). One pooled
// buffer for all slots would be of the next power of two, 16 MiB for three
// 4 MiB slots, allocated and zeroed anew whenever a collection emptied the
// pool.
func (w *windowWriter) slotMem(n int) []byte {
	b := chunk.Buffer(n)
	m := (*b)[:n:n]
	if uintptr(unsafe.Pointer(&m[0]))&(writeAlign-1) != 0 {
		chunk.PutBuffer(b)
		m, b = directio.Alloc(n), nil
	}
	w.mem = append(w.mem, b)
	return m
}

// dest is the place of the bytes [off, off+n) of the file in an open
// window, or nil when they are not all in one open window
// (repo.StreamOptions.Dest). It may be called on any goroutine.
func (w *windowWriter) dest(off int64, n int) []byte {
	if n <= 0 || off < 0 || off+int64(n) > w.size {
		return nil
	}
	win := off / w.win
	if (off+int64(n)-1)/w.win != win {
		return nil
	}
	w.mu.Lock()
	open := win < w.recycled+int64(len(w.slots))
	w.mu.Unlock()
	if !open {
		return nil
	}
	s := w.slots[win%int64(len(w.slots))]
	o := off - win*w.win
	return s[o : o+int64(n) : o+int64(n)]
}

// slot waits until window win is open and returns its slot.
func (w *windowWriter) slot(win int64) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for win >= w.recycled+int64(len(w.slots)) && w.werr == nil {
		w.cond.Wait()
	}
	if w.werr != nil {
		return nil, w.werr
	}
	return w.slots[win%int64(len(w.slots))], nil
}

// put delivers the file's next bytes, in order: data is a blob's
// plaintext (in its window already, or copied there now) or, with zero, a
// chunk of zeros that was never read (data is not looked at). A window
// whose last byte it delivers is handed to the writer.
func (w *windowWriter) put(data []byte, zero bool) error {
	n := int64(len(data))
	start := w.pos
	if start+n > w.size {
		return fmt.Errorf("restore %s: the chunks hold more than the file's %d bytes", w.path, w.size)
	}
	allZero := zero || isZero(data)
	for done := int64(0); done < n; {
		off := start + done
		win := off / w.win
		ws := win * w.win
		k := min(n-done, ws+w.win-off)
		s, err := w.slot(win)
		if err != nil {
			return err
		}
		dst := s[off-ws : off-ws+k]
		switch {
		case zero:
			clearEdges(dst, off)
		case &dst[0] != &data[done]: // not opened in place
			copy(dst, data[done:done+k])
		}
		if allZero {
			w.addZeros(off, off+k)
		}
		done += k
		if we := min(ws+w.win, w.size); off+k == we {
			if err := w.complete(win, ws, we, s); err != nil {
				return err
			}
		}
	}
	w.pos = start + n
	return nil
}

// clearEdges zeroes the bytes of dst, the file's bytes from off, that lie
// in blocks dst does not cover whole: only those may be written (the
// whole blocks of a zero run are holes), and the slot holds an earlier
// window's bytes.
func clearEdges(dst []byte, off int64) {
	end := off + int64(len(dst))
	lo, hi := alignUp(off), end&^(writeAlign-1)
	if hi <= lo {
		clear(dst)
		return
	}
	clear(dst[:lo-off])
	clear(dst[hi-off:])
}

// addZeros records that the file's bytes [a, b) of the window being filled
// are zeros, merged with the run before.
func (w *windowWriter) addZeros(a, b int64) {
	if n := len(w.zeros); n > 0 && w.zeros[n-1].b == a {
		w.zeros[n-1].b = b
		return
	}
	w.zeros = append(w.zeros, span{a, b})
}

// complete hands the window win, the file's bytes [ws, we) in slot s, to
// the writer: the last one padded with zeros to a whole block.
func (w *windowWriter) complete(win, ws, we int64, s []byte) error {
	end := alignUp(we)
	clear(s[we-ws : end-ws])
	zeros := w.zeros
	if n := len(zeros); n > 0 && zeros[n-1].b == we {
		zeros[n-1].b = end // the padding is zeros too: a zero tail block stays a hole
	}
	w.zeros = nil
	w.jobs <- winJob{w: win, ws: ws, we: end, zeros: zeros}
	w.mu.Lock()
	err := w.werr
	w.mu.Unlock()
	return err
}

// writer writes the windows handed to it, in order, and opens the window
// windowSlots further on in each slot it is done with.
func (w *windowWriter) writer(jobs <-chan winJob) {
	defer close(w.done)
	var err error
	for j := range jobs {
		if err == nil {
			err = w.writeWindow(j)
		}
		w.mu.Lock()
		w.recycled = j.w + 1
		if err != nil && w.werr == nil {
			w.werr = err
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// writeWindow writes a window but for the whole blocks of its zero runs.
func (w *windowWriter) writeWindow(j winJob) error {
	s := w.slots[j.w%int64(len(w.slots))]
	p := j.ws
	for _, z := range j.zeros {
		lo, hi := alignUp(z.a), z.b&^(writeAlign-1)
		if hi <= lo {
			continue
		}
		if err := w.writeAt(s[p-j.ws:lo-j.ws], p); err != nil {
			return err
		}
		p = hi
	}
	return w.writeAt(s[p-j.ws:j.we-j.ws], p)
}

func (w *windowWriter) writeAt(b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	return pwriteBlocks(w.f, &w.direct, w.path, b, off)
}

// finish waits for the writes and sets the file's size; the file stays
// open for the caller's chmod. Like the rest of the restored tree it is
// not fsynced one by one: the staging directory is put on disk as a whole
// (staging.sync) before it is swapped into place.
func (w *windowWriter) finish() error {
	if w.pos != w.size {
		return fmt.Errorf("restore %s: %d of %d bytes delivered", w.path, w.pos, w.size)
	}
	if err := w.stop(); err != nil {
		return err
	}
	if err := w.f.Truncate(w.size); err != nil { // cuts the padding; a trailing hole too
		return fmt.Errorf("restore %s: %w", w.path, err)
	}
	return nil
}

// stop ends the writer goroutine once its windows are written and returns
// the first write error.
func (w *windowWriter) stop() error {
	if w.jobs != nil {
		close(w.jobs)
		w.jobs = nil
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.werr
}

// close releases the file and the slots; it may be called again. Nothing
// may be opened into the slots any more (StreamBlobs has returned).
func (w *windowWriter) close() error {
	_ = w.stop()
	for _, b := range w.mem {
		if b != nil {
			chunk.PutBuffer(b)
		}
	}
	w.mem, w.slots = nil, nil
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
