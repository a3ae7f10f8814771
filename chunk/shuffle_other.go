//go:build !amd64

package chunk

// shufflePlanes is shuffle4 of src into planes that need not be contiguous
// (see the amd64 version); here without SIMD.
func shufflePlanes(p [4][]byte, src []byte) { shuffleTail(p, src, 0) }
