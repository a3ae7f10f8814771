package chunk

// unshuffle4Blocks interleaves blocks*16 bytes of each of s0..s3 into
// blocks*64 bytes of dst (unshuffle_amd64.s). The caller checks the lengths.
//
//go:noescape
func unshuffle4Blocks(dst, s0, s1, s2, s3 *byte, blocks int)

// unshufflePlanes is unshuffle4 of planes that need not be contiguous, with
// SSE2 for all but the last few words: the raw planes of a stored chunk are
// read where they lie instead of being gathered first. Reading a 1 GiB file
// of float32 embeddings through a mount spent a sixth of its CPU in the
// byte-by-byte unshuffle4 (eight memory operations per word); this is a few
// instructions per 64 bytes. p is what planes returns for a shuffled
// buffer; dst has the plaintext's length and overlaps no plane.
func unshufflePlanes(dst []byte, p [4][]byte) {
	n := len(p[0])
	blocks := n / 16
	if blocks > 0 && len(p[1]) >= n && len(p[2]) >= n && len(p[3]) >= n && len(dst) >= 4*n {
		unshuffle4Blocks(&dst[0], &p[0][0], &p[1][0], &p[2][0], &p[3][0], blocks)
	} else {
		blocks = 0
	}
	unshuffleTail(dst, p, blocks*16)
}
