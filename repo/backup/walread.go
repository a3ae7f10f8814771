package backup

import (
	"runtime"

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
// of the records a resumed replay's appended entries update or delete).
// The reads go to the kernel together through a fileRing (IORING_OP_READ
// at the requests' offsets), so that on a cold page cache the kernel
// starts them inside one block plug: a backup after a day read the old
// payloads of 16 spaces' updated records with ~8,000 preads, each a
// request to the device, a virtio notification (a costly exit on this
// virtual machine) and a sleep until it came back (docs/benchmarks.md,
// issue 18, session 24). Reads the ring could not do, or a system without
// io_uring, are done with pread; OK stays false only for a read that
// failed both ways. It returns false when a failed ring may still write
// into the Bufs: the caller must not reuse them (readWALBatch keeps them
// from the garbage collector for good).
func readWALBatch(rs []walreplay.ReadAt) bool {
	if len(rs) >= walBatchMin {
		if ring, err := newFileRing(walBatchRing); err == nil {
			ops := make([]ringOp, len(rs))
			for k, q := range rs {
				ops[k] = ringOp{fd: int(q.File.Fd()), buf: q.Buf, off: q.Off, atOff: true}
			}
			if err := ring.run(ops); err != nil && !ring.drain() {
				never := make(chan struct{}) // never closed: parks for good
				go func() {
					<-never
					runtime.KeepAlive(rs)
				}()
				ring.close()
				return false
			}
			ring.close()
			for k := range rs {
				rs[k].OK = int(ops[k].res) == len(rs[k].Buf)
			}
			runtime.KeepAlive(rs) // the files, until the kernel is done
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
