//go:build linux

package backup

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo/uring"
)

// fileRing reads a batch of files with one system call per submission: an
// io_uring (IORING_OP_READ: Linux 5.6 and later) with one read per file,
// submitted together. On a cold page cache the kernel starts every
// file's read inside one block plug, so the reads of files that lie side by side on the disk (the
// files of one directory, as a copy writes them) are merged into one
// request to the device: a first backup of Go's source tree made
// 13,000-14,600 read requests through read(2), one per file, and
// 3,800-4,300 this way, each request a virtio notification and an
// interrupt on a virtual machine
// (docs/benchmarks.md, "Issue 18, session 15: many small files"). Reads
// that fail, or a kernel without io_uring, leave the file to the caller's
// ordinary read.
//
// A fileRing is used by one goroutine at a time.
//
// The ring also closes the files, each after a read that finds its end, in
// a second submission: two system calls fewer per file.
type fileRing struct {
	ring    *uring.Ring
	entries uint32
	// owed counts the operations of a failed submission that the kernel
	// took (drain waits for their completions).
	owed uint32
	// scratch takes the one-byte reads that find the files' ends (batch.go).
	scratch []byte
}

// newFileRing sets up a ring of entries reads (a power of two).
func newFileRing(entries uint32) (*fileRing, error) {
	ring, err := uring.Setup(entries)
	if err != nil {
		return nil, err
	}
	return &fileRing{ring: ring, entries: ring.Entries, scratch: make([]byte, ring.Entries)}, nil
}

// ringStalls bounds the retries of an io_uring_enter that returns EAGAIN or
// EBUSY (each after 1 ms) before the batch fails.
const ringStalls = 50

// drain waits for the operations a failed submission left in flight
// (owed), so that no read lands in their buffers after the ring is
// dropped; it reports whether they all completed.
func (r *fileRing) drain() bool {
	head := atomic.LoadUint32(r.ring.CQHead)
	for tries := 0; ; tries++ {
		got := atomic.LoadUint32(r.ring.CQTail) - head
		if got >= r.owed {
			return true
		}
		// min_complete counts every completion not yet reaped, and
		// nothing is reaped here: ask for all of them.
		_, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.ring.FD), 0, uintptr(r.owed), uring.EnterGetEvents, 0, 0)
		if errno != 0 && errno != syscall.EINTR && tries >= ringStalls {
			return false
		}
		if errno == syscall.EAGAIN || errno == syscall.EBUSY {
			time.Sleep(time.Millisecond)
		}
	}
}

// close releases the ring.
func (r *fileRing) close() {
	r.ring.Close()
}

// run runs ops, up to r.entries at a time (a linked op and the one after
// it always in the same submission), and sets each op's res to its
// result: the count read, 0 for a close, or minus the error number. The
// bufs must stay untouched until it returns. An error is the ring's own
// (io_uring_enter failed): the results then mean nothing, and reads taken
// may still land in the bufs, which the caller must then never reuse.
func (r *fileRing) run(ops []ringOp) error {
	for len(ops) > 0 {
		n := min(len(ops), int(r.entries))
		for n > 1 && ops[n-1].link && n < len(ops) {
			n--
		}
		if err := r.runSome(ops[:n]); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

func (r *fileRing) runSome(ops []ringOp) error {
	tail := atomic.LoadUint32(r.ring.SQTail)
	for i := range ops {
		op := &ops[i]
		s := r.ring.SQE(tail)
		*s = uring.SQE{Opcode: uring.OpRead, FD: int32(op.fd), Off: uring.CurrentPos, Len: uint32(len(op.buf)), UserData: uint64(i)}
		if op.close {
			*s = uring.SQE{Opcode: uring.OpClose, FD: int32(op.fd), UserData: uint64(i)}
		} else if len(op.buf) > 0 {
			s.Addr = uint64(uintptr(unsafe.Pointer(&op.buf[0])))
		}
		if op.link && i < len(ops)-1 {
			s.Flags = uring.HardLink
		}
		tail++
	}
	atomic.StoreUint32(r.ring.SQTail, tail)
	toSubmit, want := uint32(len(ops)), uint32(len(ops))
	head := atomic.LoadUint32(r.ring.CQHead)
	stalls := 0
	for {
		got := atomic.LoadUint32(r.ring.CQTail) - head
		if got >= want && toSubmit == 0 {
			break
		}
		// min_complete counts every completion not yet reaped from
		// head (the kernel waits until tail-head reaches it): want.
		n, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.ring.FD), uintptr(toSubmit), uintptr(want), uring.EnterGetEvents, 0, 0)
		switch {
		case errno == syscall.EINTR:
			continue
		case (errno == syscall.EAGAIN || errno == syscall.EBUSY) && stalls < ringStalls:
			// The kernel is short of memory for requests, or of room
			// for completions: wait a little, a bounded number of
			// times, then fail the batch (its files are read with
			// read(2)) rather than spin.
			stalls++
			time.Sleep(time.Millisecond)
			continue
		case errno != 0:
			r.owed = want - toSubmit // submitted; their completions are not reaped (drain)
			return errno
		}
		toSubmit -= min(uint32(n), toSubmit)
	}
	for end := head + want; head != end; head++ {
		c := r.ring.CQE(head)
		ops[c.UserData].res = c.Res
	}
	atomic.StoreUint32(r.ring.CQHead, head)
	// The bufs were written by the kernel; keep them reachable until here.
	runtime.KeepAlive(ops)
	return nil
}
