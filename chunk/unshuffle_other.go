//go:build !amd64

package chunk

// unshuffle4Fast is unshuffle4 where there is no SIMD version.
func unshuffle4Fast(dst, src []byte) { unshuffle4(dst, src) }
