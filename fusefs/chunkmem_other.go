//go:build !linux

package fusefs

// adviseHuge is a no-op where transparent huge pages are not asked for
// with madvise.
func adviseHuge([]byte) {}

// populate reports that the caller must touch the pages itself.
func populate([]byte) bool { return false }
