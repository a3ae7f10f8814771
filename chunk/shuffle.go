package chunk

// shuffle4 transposes src as an array of 4-byte words into dst: first byte 0
// of every word, then byte 1, 2 and 3, then the len%4 trailing bytes as they
// are. For float32 data the sign/exponent bytes then sit together, where
// zstd's entropy coder can exploit how few distinct values they take; mixed
// with the near-random mantissa bytes they are invisible to it.
// dst must have len(src) bytes and must not overlap src.
func shuffle4(dst, src []byte) {
	n := len(src) / 4
	d0, d1, d2, d3 := dst[:n], dst[n:2*n], dst[2*n:3*n], dst[3*n:4*n]
	s := src[:4*n]
	for i := range n {
		w := s[4*i : 4*i+4 : 4*i+4]
		d0[i] = w[0]
		d1[i] = w[1]
		d2[i] = w[2]
		d3[i] = w[3]
	}
	copy(dst[4*n:], src[4*n:])
}

// shuffleTail writes words from..len(p[0])-1 of src into the planes p and
// the trailing bytes into p[3] (beyond len(p[0])): the part of
// shufflePlanes its SIMD loop leaves, or all of it.
func shuffleTail(p [4][]byte, src []byte, from int) {
	n := len(p[0])
	d0, d1, d2, d3 := p[0][:n], p[1][:n], p[2][:n], p[3][:n]
	s := src[:4*n]
	for i := from; i < n; i++ {
		w := s[4*i : 4*i+4 : 4*i+4]
		d0[i], d1[i], d2[i], d3[i] = w[0], w[1], w[2], w[3]
	}
	copy(p[3][n:], src[4*n:])
}

// shuffle4Fast is shuffle4 through shufflePlanes.
func shuffle4Fast(dst, src []byte) { shufflePlanes(planes(dst[:len(src)]), src) }

// unshuffle4 inverts shuffle4. dst must have len(src) bytes and must not
// overlap src.
func unshuffle4(dst, src []byte) {
	n := len(src) / 4
	s0, s1, s2, s3 := src[:n], src[n:2*n], src[2*n:3*n], src[3*n:4*n]
	d := dst[:4*n]
	for i := range n {
		w := d[4*i : 4*i+4 : 4*i+4]
		w[0] = s0[i]
		w[1] = s1[i]
		w[2] = s2[i]
		w[3] = s3[i]
	}
	copy(dst[4*n:], src[4*n:])
}

// unshuffleTail interleaves words from..len(p[0])-1 of the planes p into
// dst and appends the trailing bytes of p[3] (those beyond len(p[0])): the
// part of unshufflePlanes its SIMD loop leaves, or all of it.
func unshuffleTail(dst []byte, p [4][]byte, from int) {
	n := len(p[0])
	s0, s1, s2, s3 := p[0][:n], p[1][:n], p[2][:n], p[3][:n]
	d := dst[:4*n]
	for i := from; i < n; i++ {
		w := d[4*i : 4*i+4 : 4*i+4]
		w[0], w[1], w[2], w[3] = s0[i], s1[i], s2[i], s3[i]
	}
	copy(dst[4*n:], p[3][n:])
}
