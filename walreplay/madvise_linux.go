package walreplay

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// dropPages takes a mapping's pages out of this process's resident set. The
// mapping stays valid: a later access faults the page back in from the page
// cache. Without it, a zero-copy State of a large space would keep the whole
// WAL resident, and the backup's memory would grow with the WAL.
func dropPages(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, syscall.MADV_DONTNEED)
	}
}

// prefetchFile asks the kernel to read the first n bytes of f into the page
// cache in the background (POSIX_FADV_WILLNEED). The kernel reads at most
// one readahead window per call, so the range is advised piece by piece.
func prefetchFile(f *os.File, n int64) {
	const step = 2 << 20
	for off := int64(0); off < n; off += step {
		if unix.Fadvise(int(f.Fd()), off, min(step, n-off), unix.FADV_WILLNEED) != nil {
			return
		}
	}
}

// fileIdentity returns the inode, mtime and ctime of path (ns).
func fileIdentity(path string) (ino uint64, mtime, ctime int64, ok bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, 0, false
	}
	return st.Ino, st.Mtim.Nano(), st.Ctim.Nano(), true
}
