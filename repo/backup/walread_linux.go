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
	"memento/walreplay"
)

// walBatchRing is the io_uring size of readWALBatch: reads submitted at
// once.
const walBatchRing = 256

// walBatchMin is the fewest reads readWALBatch gives to an io_uring: fewer
// go with pread (a ring costs a setup and two maps).
const walBatchMin = 16

// walBatchReader is the walreplay.BatchReader of a backup's replays:
// readWALBatch.
func walBatchReader() walreplay.BatchReader { return readWALBatch }

// readWALBatch fills each request's Buf from its File at its Off and sets
// its OK when the read was whole (a walreplay.BatchReader: the old payloads
// of the records a resumed replay's appended entries update or delete). The reads go to the kernel together
// through an io_uring (IORING_OP_READ: Linux 5.6 and later), so that on a
// cold page cache the kernel starts them inside one block plug: a backup
// after a day read the old payloads of 16 spaces' updated records with
// ~8,000 preads, each a request to the device, a virtio notification (a
// costly exit on this virtual machine) and a sleep until it came back
// (docs/benchmarks.md, issue 18, session 24). Reads the ring could not do,
// or a kernel without it, are done with pread; ok stays false only for a
// read that failed both ways. It returns false when a failed ring may
// still write into the Bufs: the caller must not reuse them (readWALBatch
// keeps them from the garbage collector for good). The ring's submit and
// reap loop is ringRead's own: fileRing's reads at the file position
// (RW_CUR_POS) and its linked closes do not fit reads at given offsets.
func readWALBatch(rs []walreplay.ReadAt) bool {
	if len(rs) >= walBatchMin {
		if ring, err := uring.Setup(walBatchRing); err == nil {
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
	for i := range rs {
		if q := &rs[i]; !q.OK {
			n, err := q.File.ReadAt(q.Buf, q.Off)
			q.OK = err == nil && n == len(q.Buf)
		}
	}
	return true
}

// ringRead runs rs's reads on r, up to its size at a time, and sets ok for
// the whole ones. It returns false when io_uring_enter failed with reads
// taken and not waited for.
func ringRead(r *uring.Ring, rs []walreplay.ReadAt) bool {
	for start := 0; start < len(rs); {
		n := min(len(rs)-start, int(r.Entries))
		tail := atomic.LoadUint32(r.SQTail)
		for k := start; k < start+n; k++ {
			q := &rs[k]
			s := r.SQE(tail)
			*s = uring.SQE{Opcode: uring.OpRead, FD: int32(q.File.Fd()), Off: uint64(q.Off), Len: uint32(len(q.Buf)), UserData: uint64(k)}
			if len(q.Buf) > 0 {
				s.Addr = uint64(uintptr(unsafe.Pointer(&q.Buf[0])))
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
			q.OK = int(c.Res) == len(q.Buf)
		}
		atomic.StoreUint32(r.CQHead, head)
		start += n
	}
	runtime.KeepAlive(rs) // the bufs and files, until the kernel is done
	return true
}
