//go:build linux

package backup

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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
	fd                     int
	sqHead, sqTail, sqMask *uint32
	sqArray, sqes          unsafe.Pointer
	cqHead, cqTail, cqMask *uint32
	cqes                   unsafe.Pointer
	entries                uint32
	rings, sqeMem          []byte
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

// The io_uring ABI (include/uapi/linux/io_uring.h).
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  uringSQOffsets
	cqOff                                                                  uringCQOffsets
}

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	resv2                                                           uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	resv2                                                           uint64
}

type uringSQE struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	rwFlags  uint32
	userData uint64
	pad      [3]uint64
}

// ringHook lets a test fail a submission where the kernel would, and
// change what the kernel returned (fileRing.hook).
type ringHook struct {
	// enter, if set, is called instead of io_uring_enter; sys is the
	// real call.
	enter  func(r *fileRing, toSubmit, minComplete uint32, sys func(toSubmit, minComplete uint32) (uintptr, syscall.Errno)) (uintptr, syscall.Errno)
	reaped func(ops []ringOp)
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

const (
	uringOpRead        = 22         // IORING_OP_READ
	uringOpClose       = 19         // IORING_OP_CLOSE
	uringHardLink      = 1 << 3     // IOSQE_IO_HARDLINK
	uringOffSQEs       = 0x10000000 // IORING_OFF_SQES
	uringEnterGetEvent = 1          // IORING_ENTER_GETEVENTS
	uringFeatSingleMap = 1          // IORING_FEAT_SINGLE_MMAP
	uringFeatCurPos    = 1 << 3     // IORING_FEAT_RW_CUR_POS
	// uringCurrentPos as a read's offset reads at, and advances, the
	// file position, as read(2) does.
	uringCurrentPos = ^uint64(0)
)

// newFileRing sets up a ring of entries reads (a power of two).
func newFileRing(entries uint32) (*fileRing, error) {
	var p uringParams
	fd, _, errno := syscall.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, errno
	}
	r := &fileRing{fd: int(fd), entries: p.sqEntries, scratch: make([]byte, p.sqEntries)}
	if p.features&uringFeatSingleMap == 0 || p.features&uringFeatCurPos == 0 {
		// Before Linux 5.4 (no single mapping: not worth a second one),
		// or before 5.6, which brought IORING_OP_READ, IORING_OP_CLOSE
		// and reads at the file position (RW_CUR_POS) together: on 5.4
		// and 5.5 every read of a batch would fail with EINVAL. Found
		// here once, at the first ring, not by a batch's reads.
		syscall.Close(r.fd)
		return nil, syscall.ENOSYS
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(uringCQE{})))
	var err error
	if r.rings, err = unix.Mmap(r.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		syscall.Close(r.fd)
		return nil, err
	}
	if r.sqeMem, err = unix.Mmap(r.fd, uringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(uringSQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		_ = unix.Munmap(r.rings)
		syscall.Close(r.fd)
		return nil, err
	}
	b := unsafe.Pointer(&r.rings[0])
	r.sqHead, r.sqTail, r.sqMask = (*uint32)(unsafe.Add(b, p.sqOff.head)), (*uint32)(unsafe.Add(b, p.sqOff.tail)), (*uint32)(unsafe.Add(b, p.sqOff.ringMask))
	r.sqArray, r.sqes = unsafe.Add(b, p.sqOff.array), unsafe.Pointer(&r.sqeMem[0])
	r.cqHead, r.cqTail, r.cqMask = (*uint32)(unsafe.Add(b, p.cqOff.head)), (*uint32)(unsafe.Add(b, p.cqOff.tail)), (*uint32)(unsafe.Add(b, p.cqOff.ringMask))
	r.cqes = unsafe.Add(b, p.cqOff.cqes)
	return r, nil
}

// ringStalls bounds the retries of an io_uring_enter that returns EAGAIN or
// EBUSY (each after 1 ms) before the batch fails.
const ringStalls = 50

// drain waits for the operations a failed submission left in flight
// (owed), so that no read lands in their buffers after the ring is
// dropped, and sets their results in the failed submission's ops (which
// run left at ringPending); it reports whether they all completed.
func (r *fileRing) drain() bool {
	head := atomic.LoadUint32(r.cqHead)
	for tries := 0; ; tries++ {
		got := atomic.LoadUint32(r.cqTail) - head
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
		c := (*uringCQE)(unsafe.Add(r.cqes, uintptr(head&*r.cqMask)*unsafe.Sizeof(uringCQE{})))
		r.failed[c.userData].res = c.res
	}
	atomic.StoreUint32(r.cqHead, head)
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
	n, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), uringEnterGetEvent, 0, 0)
	return n, errno
}

// close releases the ring.
func (r *fileRing) close() {
	_ = unix.Munmap(r.sqeMem)
	_ = unix.Munmap(r.rings)
	syscall.Close(r.fd)
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
	tail := atomic.LoadUint32(r.sqTail)
	start, mask := tail, *r.sqMask
	for i := range ops {
		op := &ops[i]
		idx := tail & mask
		s := (*uringSQE)(unsafe.Add(r.sqes, uintptr(idx)*unsafe.Sizeof(uringSQE{})))
		*s = uringSQE{opcode: uringOpRead, fd: int32(op.fd), off: uringCurrentPos, len: uint32(len(op.buf)), userData: uint64(i)}
		if op.close {
			*s = uringSQE{opcode: uringOpClose, fd: int32(op.fd), userData: uint64(i)}
		} else if len(op.buf) > 0 {
			s.addr = uint64(uintptr(unsafe.Pointer(&op.buf[0])))
		}
		if op.link && i < len(ops)-1 {
			s.flags = uringHardLink
		}
		*(*uint32)(unsafe.Add(r.sqArray, uintptr(idx)*4)) = idx
		tail++
	}
	atomic.StoreUint32(r.sqTail, tail)
	toSubmit, want := uint32(len(ops)), uint32(len(ops))
	head := atomic.LoadUint32(r.cqHead)
	stalls := 0
	for {
		got := atomic.LoadUint32(r.cqTail) - head
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
			taken := min(atomic.LoadUint32(r.sqHead)-start, want)
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
		c := (*uringCQE)(unsafe.Add(r.cqes, uintptr(head&*r.cqMask)*unsafe.Sizeof(uringCQE{})))
		ops[c.userData].res = c.res
	}
	atomic.StoreUint32(r.cqHead, head)
	// The bufs were written by the kernel; keep them reachable until here.
	runtime.KeepAlive(ops)
	if r.hook != nil && r.hook.reaped != nil {
		r.hook.reaped(ops)
	}
	return nil
}
