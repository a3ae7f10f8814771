package chunk

// unshuffle4Blocks interleaves blocks*16 bytes of each of s0..s3 into
// blocks*64 bytes of dst (unshuffle_amd64.s). The caller checks the lengths.
//
//go:noescape
func unshuffle4Blocks(dst, s0, s1, s2, s3 *byte, blocks int)

// unshuffle4Fast is unshuffle4 with SSE2 for all but the last few words.
// Reading a 1 GiB file of float32 embeddings through a mount spent a sixth
// of its CPU in the byte-by-byte unshuffle4 (eight memory operations per
// word); this is a few instructions per 64 bytes. Same contract as
// unshuffle4: dst has len(src) bytes and does not overlap src.
func unshuffle4Fast(dst, src []byte) {
	n := len(src) / 4
	blocks := n / 16
	if blocks == 0 || len(dst) < len(src) {
		unshuffle4(dst, src)
		return
	}
	unshuffle4Blocks(&dst[0], &src[0], &src[n], &src[2*n], &src[3*n], blocks)
	done := blocks * 16
	s0, s1, s2, s3 := src[:n], src[n:2*n], src[2*n:3*n], src[3*n:4*n]
	d := dst[:4*n]
	for i := done; i < n; i++ {
		w := d[4*i : 4*i+4 : 4*i+4]
		w[0], w[1], w[2], w[3] = s0[i], s1[i], s2[i], s3[i]
	}
	copy(dst[4*n:], src[4*n:])
}
