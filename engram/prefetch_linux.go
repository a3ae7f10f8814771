package engram

import (
	"os"

	"golang.org/x/sys/unix"
)

// prefetchPages asks the kernel to read the n bytes at each offset of f
// into the page cache, without waiting for them (FADV_WILLNEED): the reads
// that follow find them there or in flight, so a sample of scattered pages
// waits for the disk about once, not once a page. Readahead is turned off
// for the descriptor first (FADV_RANDOM): the sample is scattered, and a
// page read alone should not bring the next 128 KiB with it. Advice only:
// errors are ignored, the reads work without it.
func prefetchPages(f *os.File, offsets []int64, n int64) {
	fd := int(f.Fd())
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM)
	for _, off := range offsets {
		_ = unix.Fadvise(fd, off, n, unix.FADV_WILLNEED)
	}
}
