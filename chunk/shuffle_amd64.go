package chunk

import "golang.org/x/sys/cpu"

// shuffle4Blocks splits blocks*64 bytes of src into blocks*16 bytes of each
// of d0..d3 (shuffle_amd64.s, SSSE3). The caller checks the lengths.
//
//go:noescape
func shuffle4Blocks(d0, d1, d2, d3, src *byte, blocks int)

// shufflePlanes is shuffle4 of src into planes that need not be contiguous
// (p as planes returns them for a buffer of len(src) bytes), with SSSE3 for
// all but the last few words: the byte-by-byte loop (eight memory operations
// per word) was a twentieth of a first backup's CPU on float32 data; this is
// a few instructions per 64 bytes. No plane may overlap src.
func shufflePlanes(p [4][]byte, src []byte) {
	n := len(src) / 4
	blocks := n / 16
	if cpu.X86.HasSSSE3 && blocks > 0 && len(p[0]) >= n && len(p[1]) >= n && len(p[2]) >= n && len(p[3]) >= len(src)-3*n {
		shuffle4Blocks(&p[0][0], &p[1][0], &p[2][0], &p[3][0], &src[0], blocks)
	} else {
		blocks = 0
	}
	shuffleTail(p, src, blocks*16)
}
