//go:build !linux

package walreplay

import "os"

// dropPages is a no-op where madvise(MADV_DONTNEED) is not wired up; mapped
// pages then stay resident until the State is closed.
func dropPages(b []byte) {}

func prefetchFile(*os.File, int64) {}

// fileIdentity is not available here: checkpoints are never resumed.
func fileIdentity(string) (ino uint64, mtime, ctime int64, ok bool) { return 0, 0, 0, false }
