package backup

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// readAheadFlags open a file only to read it ahead: not following a final
// symlink, and not waiting on a FIFO that replaced the file since its lstat.
const readAheadFlags = fileFlags | syscall.O_NONBLOCK

// readAhead asks the kernel to read path's first size bytes into the page
// cache (posix_fadvise WILLNEED), without waiting for them.
func readAhead(path string, size int64) {
	fd, err := openFlags(path, readAheadFlags)
	if err != nil {
		return
	}
	_ = unix.Fadvise(fd, 0, size, unix.FADV_WILLNEED)
	_ = syscall.Close(fd)
}
