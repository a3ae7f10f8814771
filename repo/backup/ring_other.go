//go:build !linux

package backup

import "syscall"

// fileRing is Linux's io_uring (ring_linux.go); elsewhere every small file
// is read with read(2).
type fileRing struct {
	entries uint32
	scratch []byte
}

func newFileRing(uint32) (*fileRing, error) { return nil, syscall.ENOSYS }

func (r *fileRing) close() {}

func (r *fileRing) run([]ringOp) error { return syscall.ENOSYS }

func (r *fileRing) drain() bool { return true }
