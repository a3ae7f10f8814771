package walreplay

import "os"

// ReadAt is one read of a BatchReader: len(Buf) bytes of File at Off.
type ReadAt struct {
	File *os.File
	Off  int64
	Buf  []byte
	OK   bool // set by the reader when the read was whole
}

// BatchReader does the reads of rs, in any order, and sets OK for each
// one read whole. It returns false when reads it started may still write
// into their Bufs after it returned (an io_uring whose reads the kernel
// took when io_uring_enter failed): the caller then never reuses those
// Bufs, and reads what it needs another way.
//
// A resumed replay that tracks the version-2 digest subtracts the old
// payload of every record the appended entries update or delete; it
// gathers them and reads them together through the State's BatchReader
// (SetBatchReader), so that a backup can give them to the kernel at once
// (an io_uring: repo/backup) instead of one pread, one request to the
// device, per record.
type BatchReader func(rs []ReadAt) bool

// SetBatchReader makes r read the old payloads the version-2 digest
// subtracts (see BatchReader); nil, the default, reads each with pread.
func (s *State) SetBatchReader(r BatchReader) { s.readBatch = r }

// preadAll is the BatchReader of a State without one: a pread per read.
func preadAll(rs []ReadAt) bool {
	for i := range rs {
		if q := &rs[i]; !q.OK {
			n, err := q.File.ReadAt(q.Buf, q.Off)
			q.OK = err == nil && n == len(q.Buf)
		}
	}
	return true
}
