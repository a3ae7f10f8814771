//go:build !linux

package local

import "os"

// syncRing is Linux's io_uring (ring_linux.go); elsewhere every fsync is
// a plain one.
type syncRing struct{}

func newSyncRing() *syncRing { return &syncRing{} }

func (r *syncRing) close() {}

func (r *syncRing) sync(f *os.File) error { return f.Sync() }
