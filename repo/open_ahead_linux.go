package repo

import (
	"os"

	"golang.org/x/sys/unix"
)

// prefetch starts the kernel's readahead of f's first prefetchMax bytes
// (POSIX_FADV_WILLNEED): the local index of a 1 GiB data dir's repository
// is 4 MiB, read whole by the first commands' lookups.
func prefetch(f *os.File) { _ = unix.Fadvise(int(f.Fd()), 0, prefetchMax, unix.FADV_WILLNEED) }
