//go:build linux

package walreplay

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo/uring"
)

// batchRing is the io_uring size of readBatch: reads submitted at once.
const batchRing = 256

// ringStalls bounds the retries of an io_uring_enter that returns EAGAIN or
// EBUSY (each after 1 ms) before the batch is read with pread instead.
const ringStalls = 50

// readBatch fills each request's buf from its file at its offset and sets
// its ok when the read was whole. The reads go to the kernel together
// through an io_uring (IORING_OP_READ: Linux 5.6 and later), so that on a
// cold page cache the kernel starts them inside one block plug: a backup
// after a day read the old payloads of 16 spaces' updated records with
// ~8,000 preads, each a request to the device, a virtio notification (a
// costly exit on this virtual machine) and a sleep until it came back
// (docs/benchmarks.md, issue 18, session 24). Reads the ring could not do,
// or a kernel without it, are done with pread; ok stays false only for a
// read that failed both ways. It returns false when a failed ring may
// still write into the bufs: the caller must not reuse them (readBatch
// keeps them from the garbage collector for good).
func readBatch(rs []readReq) bool {
	if len(rs) >= batchMin {
		if ring, err := uring.Setup(batchRing); err == nil {
			if ring.Features&uring.FeatCurPos != 0 { // IORING_OP_READ came with it (5.6)
				if !ringRead(ring, rs) {
					never := make(chan struct{}) // never closed: parks for good
					go func() {
						<-never
						runtime.KeepAlive(rs)
					}()
					ring.Close()
					return false
				}
			}
			ring.Close()
		}
	}
	preadAll(rs)
	return true
}

// ringRead runs rs's reads on r, up to its size at a time, and sets ok for
// the whole ones. It returns false when io_uring_enter failed with reads
// taken and not waited for.
func ringRead(r *uring.Ring, rs []readReq) bool {
	for start := 0; start < len(rs); {
		n := min(len(rs)-start, int(r.Entries))
		tail := atomic.LoadUint32(r.SQTail)
		for k := start; k < start+n; k++ {
			q := &rs[k]
			s := r.SQE(tail)
			*s = uring.SQE{Opcode: uring.OpRead, FD: int32(q.f.Fd()), Off: uint64(q.off), Len: uint32(len(q.buf)), UserData: uint64(k)}
			if len(q.buf) > 0 {
				s.Addr = uint64(uintptr(unsafe.Pointer(&q.buf[0])))
			}
			tail++
		}
		atomic.StoreUint32(r.SQTail, tail)
		head := atomic.LoadUint32(r.CQHead)
		toSubmit, want := uint32(n), uint32(n)
		for stalls := 0; ; {
			if atomic.LoadUint32(r.CQTail)-head >= want && toSubmit == 0 {
				break
			}
			// min_complete counts the completions not yet reaped: want.
			m, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.FD), uintptr(toSubmit), uintptr(want), uring.EnterGetEvents, 0, 0)
			switch {
			case errno == syscall.EINTR:
				continue
			case (errno == syscall.EAGAIN || errno == syscall.EBUSY) && stalls < ringStalls:
				stalls++
				time.Sleep(time.Millisecond)
				continue
			case errno != 0:
				return false
			}
			toSubmit -= min(uint32(m), toSubmit)
		}
		for end := head + want; head != end; head++ {
			c := r.CQE(head)
			q := &rs[c.UserData]
			q.ok = int(c.Res) == len(q.buf)
		}
		atomic.StoreUint32(r.CQHead, head)
		start += n
	}
	runtime.KeepAlive(rs) // the bufs and files, until the kernel is done
	return true
}
