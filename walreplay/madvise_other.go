//go:build !linux

package walreplay

// dropPages is a no-op where madvise(MADV_DONTNEED) is not wired up; mapped
// pages then stay resident until the State is closed.
func dropPages(b []byte) {}
