//go:build !linux

package backup

// readAhead does nothing here: Prefetch only warms the directories and
// inodes.
func readAhead(path string, size int64) {}
