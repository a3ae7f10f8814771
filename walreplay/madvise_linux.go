package walreplay

import "syscall"

// dropPages takes a mapping's pages out of this process's resident set. The
// mapping stays valid: a later access faults the page back in from the page
// cache. Without it, a zero-copy State of a large space would keep the whole
// WAL resident, and the backup's memory would grow with the WAL.
func dropPages(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, syscall.MADV_DONTNEED)
	}
}
