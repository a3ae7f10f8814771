package backup

import (
	"os"

	"golang.org/x/sys/unix"
)

// willNeed asks the kernel to start reading n bytes of f at off into the
// page cache without waiting for them (POSIX_FADV_WILLNEED). It reports
// whether the request was made; read-ahead is only a hint, so a refusal
// just ends the prefetch.
func willNeed(f *os.File, off, n int64) bool {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED) == nil
}
