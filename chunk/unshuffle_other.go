//go:build !amd64

package chunk

// unshufflePlanes is unshuffle4 of planes that need not be contiguous (see
// the amd64 version); here without SIMD.
func unshufflePlanes(dst []byte, p [4][]byte) { unshuffleTail(dst, p, 0) }
