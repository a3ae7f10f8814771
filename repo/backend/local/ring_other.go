//go:build !linux

package local

import "os"

// ioRing is Linux's io_uring (ring_linux.go); elsewhere every fsync and
// write is a plain one.
type ioRing struct{}

func newIORing() *ioRing { return &ioRing{} }

func (r *ioRing) close() {}

func (r *ioRing) sync(f *os.File) error { return f.Sync() }

func (r *ioRing) writeAt(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }
