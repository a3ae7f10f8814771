//go:build linux

package uring

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring is an io_uring with its queues mapped. Its user decides who submits
// and who reaps; Ring holds the pointers into the shared memory.
type Ring struct {
	FD                     int
	SQHead, SQTail, SQMask *uint32
	SQArray, SQEs          unsafe.Pointer
	CQHead, CQTail, CQMask *uint32
	CQEs                   unsafe.Pointer
	Entries                uint32 // submission queue entries
	Features               uint32 // IORING_FEAT_* the kernel has
	rings, sqeMem          []byte
}

// The io_uring ABI (include/uapi/linux/io_uring.h).
type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	resv2                                                           uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	resv2                                                           uint64
}

// SQE is a submission queue entry (struct io_uring_sqe).
type SQE struct {
	Opcode   uint8
	Flags    uint8
	Ioprio   uint16
	FD       int32
	Off      uint64
	Addr     uint64
	Len      uint32
	RWFlags  uint32
	UserData uint64
	pad      [3]uint64
}

// CQE is a completion queue entry (struct io_uring_cqe).
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

const (
	OpFsync         = 3          // IORING_OP_FSYNC
	OpClose         = 19         // IORING_OP_CLOSE
	OpRead          = 22         // IORING_OP_READ
	HardLink        = 1 << 3     // IOSQE_IO_HARDLINK
	EnterGetEvents  = 1          // IORING_ENTER_GETEVENTS
	RegisterEventFD = 4          // IORING_REGISTER_EVENTFD
	offSQEs         = 0x10000000 // IORING_OFF_SQES
	featSingleMap   = 1          // IORING_FEAT_SINGLE_MMAP
	FeatCurPos      = 1 << 3     // IORING_FEAT_RW_CUR_POS: reads at the file position (Linux 5.6)
	// CurrentPos as a read's offset reads at, and advances, the file
	// position, as read(2) does.
	CurrentPos = ^uint64(0)
)

// Setup sets up a ring of entries submissions (a power of two). It fails
// before Linux 5.4 (no single mapping of both queues: not worth a second).
func Setup(entries uint32) (*Ring, error) {
	var p params
	fd, _, errno := syscall.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, errno
	}
	r := &Ring{FD: int(fd), Entries: p.sqEntries, Features: p.features}
	if p.features&featSingleMap == 0 {
		syscall.Close(r.FD)
		return nil, syscall.ENOSYS
	}
	size := max(p.sqOff.array+p.sqEntries*4, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(CQE{})))
	var err error
	if r.rings, err = unix.Mmap(r.FD, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		syscall.Close(r.FD)
		return nil, err
	}
	if r.sqeMem, err = unix.Mmap(r.FD, offSQEs, int(p.sqEntries)*int(unsafe.Sizeof(SQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		_ = unix.Munmap(r.rings)
		syscall.Close(r.FD)
		return nil, err
	}
	b := unsafe.Pointer(&r.rings[0])
	r.SQHead, r.SQTail, r.SQMask = (*uint32)(unsafe.Add(b, p.sqOff.head)), (*uint32)(unsafe.Add(b, p.sqOff.tail)), (*uint32)(unsafe.Add(b, p.sqOff.ringMask))
	r.SQArray, r.SQEs = unsafe.Add(b, p.sqOff.array), unsafe.Pointer(&r.sqeMem[0])
	r.CQHead, r.CQTail, r.CQMask = (*uint32)(unsafe.Add(b, p.cqOff.head)), (*uint32)(unsafe.Add(b, p.cqOff.tail)), (*uint32)(unsafe.Add(b, p.cqOff.ringMask))
	r.CQEs = unsafe.Add(b, p.cqOff.cqes)
	return r, nil
}

// SQE returns the submission entry at ring position pos (masked) and puts
// its index in the submission array there: fill it, then advance SQTail.
func (r *Ring) SQE(pos uint32) *SQE {
	idx := pos & *r.SQMask
	*(*uint32)(unsafe.Add(r.SQArray, uintptr(idx)*4)) = idx
	return (*SQE)(unsafe.Add(r.SQEs, uintptr(idx)*unsafe.Sizeof(SQE{})))
}

// CQE returns the completion entry at ring position pos (masked).
func (r *Ring) CQE(pos uint32) *CQE {
	return (*CQE)(unsafe.Add(r.CQEs, uintptr(pos&*r.CQMask)*unsafe.Sizeof(CQE{})))
}

// Close unmaps the queues and closes the ring.
func (r *Ring) Close() {
	_ = unix.Munmap(r.sqeMem)
	_ = unix.Munmap(r.rings)
	syscall.Close(r.FD)
}
