package chunk

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// BLAKE3-256 of large inputs, sixteen 1 KiB chunks of the message side by
// side: b3Hash16AVX512 (blake3wide_amd64.s) compresses the sixteen chunks
// in the sixteen 32-bit lanes of AVX-512 registers, all sixteen blocks of
// each, the chaining values staying in registers; then the parent nodes,
// sixteen at a time with the same kernel. github.com/zeebo/blake3 runs
// eight chunks side by side with AVX2 (3.3 GB/s on 1 MiB here); the
// reference for every digest (the tests compare the two bit for bit) and
// the fallback without AVX-512 or for short inputs.
//
// The tree (the BLAKE3 spec, section 2.1) is built level by level: the
// chaining values of the chunks of an aligned subtree of b3SubtreeChunks
// chunks, then of their parents (pairs of adjacent nodes; an odd last node
// goes up a level as it is), up to the subtree's root; complete subtrees go
// on a stack and are merged as the chunk count allows, as the spec's
// incremental hasher does with chunks. The last chunk of a message, a
// partial one, and the last few parents (the stack, the root) are compressed
// one by one in Go (b3Compress).

// BLAKE3's domain flags (the spec, section 2.1).
const (
	b3ChunkStart = 1 << 0
	b3ChunkEnd   = 1 << 1
	b3Parent     = 1 << 2
	b3Root       = 1 << 3
	b3KeyedHash  = 1 << 4

	b3BlockLen = 64
	b3ChunkLen = 1024
	// b3GroupLen is the input of one kernel call on chunks.
	b3GroupLen = 16 * b3ChunkLen
)

// b3IV is BLAKE3's IV (the spec, section 2.2): the key of the hash mode.
var b3IV = [8]uint32{0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19}

// b3Job is one call of a b3Hash16: sixteen lanes, lane i compressing the
// blocks 64-byte blocks at ptr[i] one after the other from the chaining
// value key, with the counter ctrHi[i]<<32 | ctrLo[i], block length 64 and
// the flags flags, plus first on the first block and last on the last.
// Chunks: 16 blocks, first b3ChunkStart, last b3ChunkEnd; parent nodes: one
// block (the two children's values), flags b3Parent. The assembly reads
// the fields at fixed offsets (TestB3JobLayout).
type b3Job struct {
	ptr    [16]*byte
	ctrLo  [16]uint32
	ctrHi  [16]uint32
	key    [8]uint32
	blocks int
	flags  uint32
	first  uint32
	last   uint32
}

// b3Hash16 runs the sixteen lanes of j and writes lane i's chaining value
// (little-endian words) to out[i].
type b3Hash16 func(j *b3Job, out *[16][32]byte)

// b3Hash16Go is b3Hash16AVX512 in Go, lane after lane: the reference the
// tests check the assembly against, and the tree logic on every GOARCH.
func b3Hash16Go(j *b3Job, out *[16][32]byte) {
	var res [16][32]byte // all lanes read before any is written, as the assembly
	for i := range 16 {
		in := unsafe.Slice(j.ptr[i], j.blocks*b3BlockLen)
		cv := j.key
		for b := range j.blocks {
			var m [16]uint32
			for w := range 16 {
				m[w] = binary.LittleEndian.Uint32(in[b*b3BlockLen+4*w:])
			}
			f := j.flags
			if b == 0 {
				f |= j.first
			}
			if b == j.blocks-1 {
				f |= j.last
			}
			cv = b3Compress(&cv, &m, uint64(j.ctrHi[i])<<32|uint64(j.ctrLo[i]), b3BlockLen, f)
		}
		putWords(&res[i], &cv)
	}
	*out = res
}

// b3Compress is BLAKE3's compression function (the spec, section 2.2),
// the first eight words of its output: the chaining value, or the first
// 32 bytes of the output of a root node.
func b3Compress(cv *[8]uint32, m *[16]uint32, ctr uint64, blen, flags uint32) [8]uint32 {
	v0, v1, v2, v3, v4, v5, v6, v7 := cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7]
	v8, v9, v10, v11 := b3IV[0], b3IV[1], b3IV[2], b3IV[3]
	v12, v13, v14, v15 := uint32(ctr), uint32(ctr>>32), blen, flags
	m0, m1, m2, m3, m4, m5, m6, m7 := m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]
	m8, m9, m10, m11, m12, m13, m14, m15 := m[8], m[9], m[10], m[11], m[12], m[13], m[14], m[15]
	for r := 0; ; r++ {
		v0, v4, v8, v12 = b3G(v0, v4, v8, v12, m0, m1)
		v1, v5, v9, v13 = b3G(v1, v5, v9, v13, m2, m3)
		v2, v6, v10, v14 = b3G(v2, v6, v10, v14, m4, m5)
		v3, v7, v11, v15 = b3G(v3, v7, v11, v15, m6, m7)
		v0, v5, v10, v15 = b3G(v0, v5, v10, v15, m8, m9)
		v1, v6, v11, v12 = b3G(v1, v6, v11, v12, m10, m11)
		v2, v7, v8, v13 = b3G(v2, v7, v8, v13, m12, m13)
		v3, v4, v9, v14 = b3G(v3, v4, v9, v14, m14, m15)
		if r == 6 {
			break
		}
		// The message permutation: 2 6 3 10 7 0 4 13 1 11 12 5 9 14 15 8.
		m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13, m14, m15 =
			m2, m6, m3, m10, m7, m0, m4, m13, m1, m11, m12, m5, m9, m14, m15, m8
	}
	return [8]uint32{v0 ^ v8, v1 ^ v9, v2 ^ v10, v3 ^ v11, v4 ^ v12, v5 ^ v13, v6 ^ v14, v7 ^ v15}
}

// b3G is BLAKE3's quarter-round.
func b3G(a, b, c, d, x, y uint32) (uint32, uint32, uint32, uint32) {
	a += b + x
	d = bits.RotateLeft32(d^a, -16)
	c += d
	b = bits.RotateLeft32(b^c, -12)
	a += b + y
	d = bits.RotateLeft32(d^a, -8)
	c += d
	b = bits.RotateLeft32(b^c, -7)
	return a, b, c, d
}

// putWords stores w little-endian in b.
func putWords(b *[32]byte, w *[8]uint32) {
	for i, x := range w {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
}

// getWords loads 32 bytes as little-endian words into m[off:off+8].
func getWords(m []uint32, b *[32]byte) {
	for i := range 8 {
		m[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
}

// b3SubtreeChunks is the size of the aligned subtrees whose chunk values
// are kept together and reduced level by level with the kernel (8 KiB of
// values): the levels below 16 parents waste lanes, once a subtree.
const b3SubtreeChunks = 256

// b3MaxDepth bounds the stack of complete subtrees: 2^54 chunks.
const b3MaxDepth = 54

// b3Wide is a BLAKE3-256 hash, keyed or not, of one message with a
// b3Hash16: in one piece (sum) or written in pieces (write, then final).
// About 27 KiB: keep them in a pool.
type b3Wide struct {
	job    b3Job
	hash16 b3Hash16
	key    [8]uint32
	flags  uint32 // b3KeyedHash, or 0 for the hash mode
	chunks uint64 // chunks hashed so far (the input before buf)
	ncv    int    // chunk values of the current subtree in cvs
	depth  int
	nbuf   int
	// cvs holds the values of the current subtree's chunks (and the
	// levels above them while it is reduced); 16 more: a kernel call
	// writes sixteen values, used or not.
	cvs   [b3SubtreeChunks + 16][32]byte
	stack [b3MaxDepth][32]byte // values of complete subtrees, largest first
	buf   [b3GroupLen]byte     // the last (up to) sixteen chunks written
}

// newB3Wide returns a hasher for key (b3IV in the hash mode) with flags
// (b3KeyedHash or 0).
func newB3Wide(hash16 b3Hash16, key [8]uint32, flags uint32) *b3Wide {
	return &b3Wide{hash16: hash16, key: key, flags: flags}
}

// reset forgets the input so far.
func (h *b3Wide) reset() {
	h.chunks, h.ncv, h.depth, h.nbuf = 0, 0, 0, 0
}

// sum returns the hash of data (and leaves h reset).
func (h *b3Wide) sum(data []byte) [32]byte {
	h.reset()
	for len(data) > b3GroupLen {
		h.group(data, 16, true)
		data = data[b3GroupLen:]
	}
	return h.finish(data)
}

// write adds p to the message. Chunks are hashed once more input follows
// them (the last chunk of a message may be its root), sixteen at a time:
// the last sixteen (or fewer) wait in buf.
func (h *b3Wide) write(p []byte) {
	if h.nbuf > 0 {
		n := copy(h.buf[h.nbuf:], p)
		h.nbuf += n
		p = p[n:]
		if len(p) == 0 {
			return
		}
		h.group(h.buf[:], 16, true)
		h.nbuf = 0
	}
	for len(p) > b3GroupLen {
		h.group(p, 16, true)
		p = p[b3GroupLen:]
	}
	h.nbuf = copy(h.buf[:], p)
}

// final returns the hash of what was written (and leaves h reset).
func (h *b3Wide) final() [32]byte {
	return h.finish(h.buf[:h.nbuf])
}

// group hashes the first n (1-16) chunks of p, full ones, with the
// kernel, and appends their values to the subtree's. more says input
// follows them: a complete subtree is then reduced to its value and pushed.
func (h *b3Wide) group(p []byte, n int, more bool) {
	j := &h.job
	for i := range 16 {
		k := min(i, n-1) // lanes past n repeat the last chunk: results unused
		j.ptr[i] = &p[k*b3ChunkLen]
		c := h.chunks + uint64(k)
		j.ctrLo[i], j.ctrHi[i] = uint32(c), uint32(c>>32)
	}
	j.key, j.blocks, j.flags, j.first, j.last = h.key, b3ChunkLen/b3BlockLen, h.flags, b3ChunkStart, b3ChunkEnd
	h.hash16(j, (*[16][32]byte)(h.cvs[h.ncv:]))
	h.ncv += n
	h.chunks += uint64(n)
	if h.ncv == b3SubtreeChunks && more {
		h.push(h.reduce(h.ncv, false))
		h.ncv = 0
	}
}

// push puts the value of a complete subtree on the stack and merges it
// with the subtrees to its left while they add up to a power of two
// (subtrees of b3SubtreeChunks chunks done so far: a count with that many
// trailing zeros). Input follows: no merge is the root.
func (h *b3Wide) push(cv [32]byte) {
	h.stack[h.depth] = cv
	h.depth++
	for range bits.TrailingZeros64(h.chunks / b3SubtreeChunks) {
		h.depth--
		h.stack[h.depth-1] = h.parent(&h.stack[h.depth-1], &h.stack[h.depth], 0)
	}
}

// parent is the value of the parent node of l and r, with extra flags
// (b3Root for the root).
func (h *b3Wide) parent(l, r *[32]byte, extra uint32) [32]byte {
	var m [16]uint32
	getWords(m[:8], l)
	getWords(m[8:], r)
	cv := b3Compress(&h.key, &m, 0, b3BlockLen, h.flags|b3Parent|extra)
	var out [32]byte
	putWords(&out, &cv)
	return out
}

// reduce turns the n (>= 1) values in cvs into the value of the subtree
// above them, level by level: adjacent pairs, an odd last value going up
// as it is. root: the last merge is the root.
func (h *b3Wide) reduce(n int, root bool) [32]byte {
	j := &h.job
	j.ctrLo, j.ctrHi = [16]uint32{}, [16]uint32{}
	j.key, j.blocks, j.flags, j.first, j.last = h.key, 1, h.flags|b3Parent, 0, 0
	for n > 2 {
		p := n / 2
		carry := h.cvs[n-1] // an odd last value, before the kernel writes over it
		for g := 0; g < p; g += 16 {
			for i := range 16 {
				j.ptr[i] = &h.cvs[2*(g+min(i, p-g-1))][0]
			}
			h.hash16(j, (*[16][32]byte)(h.cvs[g:]))
		}
		if n%2 == 1 {
			h.cvs[p] = carry
		}
		n = p + n%2
	}
	if n == 1 {
		return h.cvs[0]
	}
	var f uint32
	if root {
		f = b3Root
	}
	return h.parent(&h.cvs[0], &h.cvs[1], f)
}

// finish hashes the last p (up to b3GroupLen bytes) of the message and
// returns the root's value, the hash. h is reset.
func (h *b3Wide) finish(p []byte) [32]byte {
	defer h.reset()
	if h.chunks == 0 && len(p) <= b3ChunkLen {
		return h.chunk(p, 0, b3Root)
	}
	full, rest := len(p)/b3ChunkLen, len(p)%b3ChunkLen
	if full > 0 {
		h.group(p, full, rest > 0)
	}
	if rest > 0 {
		h.cvs[h.ncv] = h.chunk(p[full*b3ChunkLen:], h.chunks, 0)
		h.ncv++
	}
	cv := h.reduce(h.ncv, h.depth == 0)
	for i := h.depth - 1; i >= 0; i-- {
		var f uint32
		if i == 0 {
			f = b3Root
		}
		cv = h.parent(&h.stack[i], &cv, f)
	}
	return cv
}

// chunk is the value of chunk number ctr, c (up to 1 KiB), compressed
// block by block in Go; extra flags (b3Root) go on its last block.
func (h *b3Wide) chunk(c []byte, ctr uint64, extra uint32) [32]byte {
	cv := h.key
	blocks := max(1, (len(c)+b3BlockLen-1)/b3BlockLen)
	for b := range blocks {
		var blk [b3BlockLen]byte
		n := copy(blk[:], c[b*b3BlockLen:])
		var m [16]uint32
		for w := range 16 {
			m[w] = binary.LittleEndian.Uint32(blk[4*w:])
		}
		f := h.flags
		if b == 0 {
			f |= b3ChunkStart
		}
		if b == blocks-1 {
			f |= b3ChunkEnd | extra
		}
		cv = b3Compress(&cv, &m, ctr, uint32(n), f)
	}
	var out [32]byte
	putWords(&out, &cv)
	return out
}
