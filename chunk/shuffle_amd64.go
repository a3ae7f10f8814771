package chunk

import "golang.org/x/sys/cpu"

// shuffle4Blocks splits blocks*64 bytes of src into blocks*16 bytes of each
// of d0..d3 (shuffle_amd64.s, SSSE3). The caller checks the lengths.
//
//go:noescape
func shuffle4Blocks(d0, d1, d2, d3, src *byte, blocks int)

// shuffle4Fast is shuffle4 with SSSE3 for all but the last few words: the
// byte-by-byte loop (eight memory operations per word) was a twentieth of a
// first backup's CPU on float32 data; this is a few instructions per 64
// bytes. dst must have len(src) bytes and must not overlap src.
func shuffle4Fast(dst, src []byte) {
	n := len(src) / 4
	blocks := n / 16
	if !cpu.X86.HasSSSE3 || blocks == 0 || len(dst) < len(src) {
		shuffle4(dst, src)
		return
	}
	shuffle4Blocks(&dst[0], &dst[n], &dst[2*n], &dst[3*n], &src[0], blocks)
	shuffleTail(dst, src, blocks*16)
}
