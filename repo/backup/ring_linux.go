//go:build linux

package backup

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileRing reads a batch of files with one system call: an io_uring
// (Linux 5.6 and later) with one read per file, submitted together. On a
// cold page cache the kernel starts every file's read inside one block
// plug, so the reads of files that lie side by side on the disk (the
// files of one directory, as a copy writes them) are merged into one
// request to the device: a first backup of Go's source tree made 13,000
// read requests through read(2), one per file, and 3,700 this way, each
// request a virtio notification and an interrupt on a virtual machine
// (docs/benchmarks.md, "Issue 18, session 15: many small files"). Reads
// that fail, or a kernel without io_uring, leave the file to the caller's
// ordinary read.
//
// A fileRing is used by one goroutine at a time.
type fileRing struct {
	fd                     int
	sqHead, sqTail, sqMask *uint32
	sqArray, sqes          unsafe.Pointer
	cqHead, cqTail, cqMask *uint32
	cqes                   unsafe.Pointer
	entries                uint32
	rings, sqeMem          []byte
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

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

const (
	uringOpRead        = 22         // IORING_OP_READ
	uringOffSQEs       = 0x10000000 // IORING_OFF_SQES
	uringEnterGetEvent = 1          // IORING_ENTER_GETEVENTS
	uringFeatSingleMap = 1          // IORING_FEAT_SINGLE_MMAP
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
	r := &fileRing{fd: int(fd), entries: p.sqEntries}
	if p.features&uringFeatSingleMap == 0 { // before Linux 5.4: not worth a second mapping
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

// close releases the ring.
func (r *fileRing) close() {
	_ = unix.Munmap(r.sqeMem)
	_ = unix.Munmap(r.rings)
	syscall.Close(r.fd)
}

// read reads, for every i, up to len(bufs[i]) bytes from fds[i] at its
// file position into bufs[i] (advancing the position as read(2) does)
// and sets res[i] to the count read or to minus the error number. At most
// r.entries reads at once; bufs must stay untouched until it returns. An
// error is the ring's own (io_uring_enter failed): res then means nothing.
func (r *fileRing) read(fds []int, bufs [][]byte, res []int32) error {
	for start := 0; start < len(fds); start += int(r.entries) {
		if err := r.readSome(fds[start:min(start+int(r.entries), len(fds))], bufs[start:], res[start:]); err != nil {
			return err
		}
	}
	return nil
}

func (r *fileRing) readSome(fds []int, bufs [][]byte, res []int32) error {
	tail := atomic.LoadUint32(r.sqTail)
	mask := *r.sqMask
	for i, fd := range fds {
		idx := tail & mask
		s := (*uringSQE)(unsafe.Add(r.sqes, uintptr(idx)*unsafe.Sizeof(uringSQE{})))
		*s = uringSQE{opcode: uringOpRead, fd: int32(fd), off: uringCurrentPos, len: uint32(len(bufs[i])), userData: uint64(i)}
		if len(bufs[i]) > 0 {
			s.addr = uint64(uintptr(unsafe.Pointer(&bufs[i][0])))
		}
		*(*uint32)(unsafe.Add(r.sqArray, uintptr(idx)*4)) = idx
		tail++
	}
	atomic.StoreUint32(r.sqTail, tail)
	toSubmit, want := uint32(len(fds)), uint32(len(fds))
	head := atomic.LoadUint32(r.cqHead)
	for {
		got := atomic.LoadUint32(r.cqTail) - head
		if got >= want && toSubmit == 0 {
			break
		}
		n, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(want-min(got, want)), uringEnterGetEvent, 0, 0)
		switch {
		case errno == syscall.EINTR || errno == syscall.EAGAIN || errno == syscall.EBUSY:
			continue
		case errno != 0:
			// The reads taken may still write into bufs: the caller
			// drops the ring and never reuses bufs (readBatch).
			return errno
		}
		toSubmit -= min(uint32(n), toSubmit)
	}
	for end := head + want; head != end; head++ {
		c := (*uringCQE)(unsafe.Add(r.cqes, uintptr(head&*r.cqMask)*unsafe.Sizeof(uringCQE{})))
		res[c.userData] = c.res
	}
	atomic.StoreUint32(r.cqHead, head)
	// bufs were written by the kernel; keep them reachable until here.
	runtime.KeepAlive(bufs)
	return nil
}
