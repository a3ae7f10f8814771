//go:build !amd64

package chunk

// shuffle4Fast is shuffle4 (see the amd64 version); here without SIMD.
func shuffle4Fast(dst, src []byte) { shuffle4(dst, src) }
