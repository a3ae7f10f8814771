package backup

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"syscall"
)

// bigRingEntries is the size of a large-file reader's ring: one read at
// a time.
const bigRingEntries = 4

// bigRings lends the large-file readers of one backup (saveFile, at most
// maxConcurrentFiles at once) io_uring rings whose waits park
// (fileRing.parkWaits): a goroutine blocked in read(2) of a cold file
// keeps its P until the runtime's sysmon takes it back (up to 10 ms
// later), and the compressors wait meanwhile. The rings are made as
// needed and closed at the end of the backup (close). Where io_uring or
// its eventfd is missing or refused, the first failure turns the rings
// off and every file is read with read(2); out of descriptors, the file
// is read with read(2) and a later one tries again.
type bigRings struct {
	mu   sync.Mutex
	all  []*fileRing
	free []*fileRing
	off  bool
	// hook, set only by tests, is given each ring as it is made.
	hook func(*fileRing)
}

// take returns a free ring, a new one, or nil (read with read(2)).
func (p *bigRings) take() *fileRing {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return nil
	}
	if n := len(p.free); n > 0 {
		r := p.free[n-1]
		p.free = p.free[:n-1]
		return r
	}
	r, err := newFileRing(bigRingEntries)
	if err == nil {
		if err = r.parkWaits(); err != nil {
			r.close()
		}
	}
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return nil // for now: this file is read with read(2)
	}
	if err != nil {
		p.off = true
		return nil
	}
	if p.hook != nil {
		p.hook(r)
	}
	p.all = append(p.all, r)
	return r
}

// put gives a ring back after a file's reads.
func (p *bigRings) put(r *fileRing) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return // closed
	}
	p.free = append(p.free, r)
}

// drop forgets a ring whose submission failed: its reads are waited for
// (drain); if even that fails, buf, which a read may still fill, is kept
// reachable for good, and drop reports false. The ring is closed.
func (p *bigRings) drop(r *fileRing, buf []byte) bool {
	p.mu.Lock()
	for i, x := range p.all {
		if x == r {
			p.all = append(p.all[:i], p.all[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
	ok := r.drain()
	if !ok {
		never := make(chan struct{}) // never closed: the goroutine parks for good
		go func() {
			<-never
			runtime.KeepAlive(buf)
		}()
	}
	r.close()
	return ok
}

// close closes the rings; later takes return nil.
func (p *bigRings) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.all {
		r.close()
	}
	p.all, p.free, p.off = nil, nil, true
}

// ringReader reads a large file, f, from its start through a ring of
// rings whose waiting goroutine parks, one read per Read at the offset it
// has come to (not at the file's position: a FUSE file in direct-I/O mode
// did not advance it for a ring's reads), with what os.File.Read returns:
// the count, io.EOF at the end, an *fs.PathError ("read", the file's name)
// wrapping the errno of a read that failed. A read the ring cannot run (no
// ring; a file system that refuses io_uring reads: EINVAL, EOPNOTSUPP; a
// read the kernel cancelled unrun; a submission that failed) is f.Read,
// from the offset reached, and so are the file's reads after it: the bytes
// and the errors are the same.
type ringReader struct {
	f     *os.File
	fd    int
	off   int64 // read so far (through the ring)
	rings *bigRings
	ring  *fileRing // nil: f.Read
	plain bool      // f's position is at off: f.Read reads on
	op    [1]ringOp
}

// newRingReader returns a reader of f, at its start, taking a ring of
// rings (nil: f.Read).
func newRingReader(f *os.File, rings *bigRings) *ringReader {
	r := &ringReader{f: f, rings: rings}
	if rings != nil {
		if r.ring = rings.take(); r.ring != nil {
			r.fd = int(f.Fd())
		}
	}
	r.plain = r.ring == nil
	return r
}

func (r *ringReader) Read(b []byte) (int, error) {
	for r.ring != nil && len(b) > 0 {
		r.op[0] = ringOp{fd: r.fd, buf: b, at: true, off: r.off}
		if err := r.ring.run(r.op[:]); err != nil {
			// The ring failed: it is dropped (its read waited for),
			// and the file read with read(2) from here.
			ring := r.ring
			r.ring = nil
			if !r.rings.drop(ring, b) {
				return 0, &fs.PathError{Op: "read", Path: r.f.Name(), Err: err}
			}
		}
		switch res := r.op[0].res; res {
		case -int32(syscall.EINTR):
			continue // as os.File.Read: read again
		case -int32(syscall.ECANCELED), -int32(syscall.EINVAL), -int32(syscall.EOPNOTSUPP), -int32(syscall.EAGAIN):
			// Never ran (a failed submission; no io-wq worker for a
			// read the kernel could not start at once) or refused,
			// nothing read (a file system that does not take io_uring
			// reads): this file is read with read(2).
			r.release()
		default:
			if res > 0 {
				r.off += int64(res)
			}
			return r.result(b, res)
		}
	}
	if !r.plain {
		// The ring's reads left f's position at 0.
		r.plain = true
		if _, err := r.f.Seek(r.off, io.SeekStart); err != nil {
			return 0, err
		}
	}
	return r.f.Read(b)
}

// result is what os.File.Read returns for a read(2) that returned res
// (minus an errno on failure).
func (r *ringReader) result(b []byte, res int32) (int, error) {
	switch {
	case res < 0:
		return 0, &fs.PathError{Op: "read", Path: r.f.Name(), Err: syscall.Errno(-res)}
	case res == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return int(res), nil
}

// release gives the ring back; the reader reads with f.Read from then on.
func (r *ringReader) release() {
	if r.ring != nil {
		r.rings.put(r.ring)
		r.ring = nil
	}
}
