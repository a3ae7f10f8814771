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
	// took (drain waits for their completions and sets their results in
	// failed, the ops of that submission, whose completions start at
	// failedHead).
	owed       uint32
	failed     []ringOp
	failedHead uint32
	// hook, set only by tests, stands in for io_uring_enter (enter) and
	// sees each submission's results (reaped) before run returns them.
	hook *ringHook
	// scratch takes the one-byte reads that find the files' ends (batch.go).
	scratch []byte
}

// ringHook lets a test fail a submission where the kernel would, and
// change what the kernel returned (fileRing.hook).
type ringHook struct {
	// enter, if set, is called instead of io_uring_enter; sys is the
	// real call.
	enter  func(r *fileRing, toSubmit, minComplete uint32, sys func(toSubmit, minComplete uint32) (uintptr, syscall.Errno)) (uintptr, syscall.Errno)
	reaped func(ops []ringOp)
}

// newFileRing sets up a ring of entries reads (a power of two).
func newFileRing(entries uint32) (*fileRing, error) {
	ring, err := uring.Setup(entries)
	if err != nil {
		return nil, err
	}
	if ring.Features&uring.FeatCurPos == 0 {
		// Before 5.6, which brought IORING_OP_READ, IORING_OP_CLOSE
		// and reads at the file position (RW_CUR_POS) together: on 5.4
		// and 5.5 every read of a batch would fail with EINVAL. Found
		// here once, at the first ring, not by a batch's reads.
		ring.Close()
		return nil, syscall.ENOSYS
	}
	return &fileRing{ring: ring, entries: ring.Entries, scratch: make([]byte, ring.Entries)}, nil
}

// ringStalls bounds the retries of an io_uring_enter that returns EAGAIN or
// EBUSY (each after 1 ms) before the batch fails.
const ringStalls = 50

// drain waits for the operations a failed submission left in flight
// (owed), so that no read lands in their buffers after the ring is
// dropped, and sets their results in the failed submission's ops (which
// run left at ringPending); it reports whether they all completed.
func (r *fileRing) drain() bool {
	head := atomic.LoadUint32(r.ring.CQHead)
	for tries := 0; ; tries++ {
		got := atomic.LoadUint32(r.ring.CQTail) - head
		if got >= r.owed {
			break
		}
		// min_complete counts every completion not yet reaped, and
		// nothing is reaped here: ask for all of them.
		_, errno := r.enter(0, r.owed)
		if errno != 0 && errno != syscall.EINTR && tries >= ringStalls {
			return false
		}
		if errno == syscall.EAGAIN || errno == syscall.EBUSY {
			time.Sleep(time.Millisecond)
		}
	}
	for end := r.failedHead + r.owed; head != end; head++ {
		c := r.ring.CQE(head)
		r.failed[c.UserData].res = c.Res
	}
	atomic.StoreUint32(r.ring.CQHead, head)
	r.failed, r.owed = nil, 0
	return true
}

// enter is io_uring_enter(toSubmit, minComplete, GETEVENTS), or the
// test's stand-in for it (hook).
func (r *fileRing) enter(toSubmit, minComplete uint32) (uintptr, syscall.Errno) {
	if r.hook != nil && r.hook.enter != nil {
		return r.hook.enter(r, toSubmit, minComplete, r.sysEnter)
	}
	return r.sysEnter(toSubmit, minComplete)
}

func (r *fileRing) sysEnter(toSubmit, minComplete uint32) (uintptr, syscall.Errno) {
	n, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.ring.FD), uintptr(toSubmit), uintptr(minComplete), uring.EnterGetEvents, 0, 0)
	return n, errno
}

// close releases the ring.
func (r *fileRing) close() {
	r.ring.Close()
}

// run runs ops, up to r.entries at a time (a linked op and the one after
// it always in the same submission), and sets each op's res to its
// result: the count read, 0 for a close, or minus the error number. The
// bufs must stay untouched until it returns. An error is the ring's own
// (io_uring_enter failed): reads taken may still land in the bufs, which
// the caller must then never reuse, and the ops the kernel took have
// ringPending until drain sets their results; those it never took have
// -ECANCELED (they never ran).
func (r *fileRing) run(ops []ringOp) error {
	for len(ops) > 0 {
		n := min(len(ops), int(r.entries))
		for n > 1 && ops[n-1].link && n < len(ops) {
			n--
		}
		if err := r.runSome(ops[:n]); err != nil {
			for i := n; i < len(ops); i++ {
				ops[i].res = -int32(syscall.ECANCELED)
			}
			return err
		}
		ops = ops[n:]
	}
	return nil
}

func (r *fileRing) runSome(ops []ringOp) error {
	tail := atomic.LoadUint32(r.ring.SQTail)
	start := tail
	for i := range ops {
		op := &ops[i]
		s := r.ring.SQE(tail)
		*s = uring.SQE{Opcode: uring.OpRead, FD: int32(op.fd), Off: uring.CurrentPos, Len: uint32(len(op.buf)), UserData: uint64(i)}
		if op.atOff {
			s.Off = uint64(op.off)
		}
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
		n, errno := r.enter(toSubmit, want)
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
			// The kernel took the first ops, in order, up to its
			// head of the submission queue: their completions are not
			// reaped (drain); the others never ran.
			taken := min(atomic.LoadUint32(r.ring.SQHead)-start, want)
			r.owed, r.failed, r.failedHead = taken, ops, head
			for i := range ops {
				ops[i].res = ringPending
				if i >= int(taken) {
					ops[i].res = -int32(syscall.ECANCELED)
				}
			}
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
	if r.hook != nil && r.hook.reaped != nil {
		r.hook.reaped(ops)
	}
	return nil
}
