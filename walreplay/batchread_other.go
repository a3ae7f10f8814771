//go:build !linux

package walreplay

// readBatch reads each request with pread (io_uring is Linux's): see
// batchread_linux.go.
func readBatch(rs []readReq) bool {
	preadAll(rs)
	return true
}
