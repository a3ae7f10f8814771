package walreplay

import "os"

// readReq is one read of readBatch: len(buf) bytes of f at off.
type readReq struct {
	f   *os.File
	off int64
	buf []byte
	ok  bool // read whole
}

// batchMin is the fewest reads readBatch gives to an io_uring: fewer go
// with pread (a ring costs a setup and two maps).
const batchMin = 16

// preadAll does the reads of rs not done yet with pread.
func preadAll(rs []readReq) {
	for i := range rs {
		if q := &rs[i]; !q.ok {
			n, err := q.f.ReadAt(q.buf, q.off)
			q.ok = err == nil && n == len(q.buf)
		}
	}
}
