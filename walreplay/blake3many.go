package walreplay

import (
	"encoding/binary"
	"math/bits"

	"github.com/zeebo/blake3"
)

// BLAKE3-256 (hash mode) of many short messages at once: the element keys of
// the version-2 state digest (ltScratch hashes every live record). A record
// of an Engram WAL is 1-6 KiB, one to six BLAKE3 chunks: blake3.Sum256
// hashes such a message one compression after another (its 8-way AVX2 path
// takes inputs of more than two chunks, and a two-chunk record is 24
// compressions in a row), so on a record-dense WAL (--dim 384, ~1.6 KiB
// records) the digest's hashing was 0.8 s of a first backup's 6.5 s of CPU.
// b3Many runs sixteen messages side by side instead, one per 32-bit lane of
// AVX-512 registers (b3Compress16AVX512): every lane steps through its own
// message (chunk blocks, then the parent nodes of its tree), and a lane that
// finishes takes the next message. Same digests, bit for bit (the spec's
// chunk, parent and root flags and counters per lane; TestB3Many checks it
// against blake3.Sum256 for every length up to 5 KiB and more).

// BLAKE3's domain flags and initial value (the spec, section 2).
const (
	b3ChunkStart = 1 << 0
	b3ChunkEnd   = 1 << 1
	b3Parent     = 1 << 2
	b3Root       = 1 << 3

	b3BlockLen = 64
	b3ChunkLen = 1024
)

var b3IV = [8]uint32{0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19}

// b3Lanes is the input and output of sixteen compressions, word-major (the
// layout b3Compress16AVX512 loads: word j of every lane is one register): cv
// the chaining values in (and out: the first eight words of each output),
// m the message blocks, ctr the chunk counters (their high words are zero:
// messages here are far below 2^32 chunks), blen the block lengths, flags
// the domain flags.
type b3Lanes struct {
	cv    [8][16]uint32
	m     [16][16]uint32
	ctr   [16]uint32
	blen  [16]uint32
	flags [16]uint32
}

// b3Compress16 is a compression of all sixteen lanes of l.
type b3Compress16 func(l *b3Lanes)

// b3MinMany is the fewest messages b3Many hashes side by side; fewer are
// hashed one by one (blake3.Sum256): sixteen lanes cost the same whether
// one or sixteen are busy.
const b3MinMany = 6

// b3Many sets out[i] to the BLAKE3-256 of msgs[i] (len(out) >= len(msgs)).
func b3Many(msgs [][]byte, out [][32]byte) {
	if !haveB3Compress16 || len(msgs) < b3MinMany {
		for i, m := range msgs {
			out[i] = blake3.Sum256(m)
		}
		return
	}
	var h b3Hasher
	h.sum(msgs, out, b3Compress16AVX512)
}

// b3Lane is one lane's message in flight: where it is in its chunks and
// blocks, and its tree's stack of chaining values (lazy merging, as the
// spec's reference implementation: a chunk's value is pushed and merged
// with its left neighbours as far as the count of chunks allows; the last
// chunk's value is merged with the whole stack, the last merge being the
// root).
type b3Lane struct {
	msg    int // index in msgs; -1: idle
	chunks int // chunks in the message (1 for the empty message)
	chunk  int // chunk being compressed, or chunks when merging the end
	block  int // next block of the chunk
	merges int // parent merges to do before the next chunk
	depth  int
	stack  [b3MaxDepth][8]uint32
}

// b3MaxDepth bounds a lane's stack: the tree of 2^b3MaxDepth chunks (far
// beyond a WAL record's 1 MiB payload bound).
const b3MaxDepth = 54

// b3Hasher holds the lanes of a b3Many call.
type b3Hasher struct {
	l     b3Lanes
	lanes [16]b3Lane
}

// sum is b3Many with the given compression of sixteen lanes.
func (h *b3Hasher) sum(msgs [][]byte, out [][32]byte, compress b3Compress16) {
	next := 0
	for i := range h.lanes {
		h.lanes[i].msg = -1
	}
	for {
		busy := 0
		for i := range h.lanes {
			ln := &h.lanes[i]
			if ln.msg < 0 && next < len(msgs) {
				// Field by field: the stack needs no zeroing (1.7 KiB a message).
				ln.msg, ln.chunks = next, max(1, (len(msgs[next])+b3ChunkLen-1)/b3ChunkLen)
				ln.chunk, ln.block, ln.merges, ln.depth = 0, 0, 0, 0
				next++
			}
			if ln.msg >= 0 {
				h.load(i, msgs[ln.msg])
				busy++
			}
		}
		if busy == 0 {
			return
		}
		compress(&h.l)
		for i := range h.lanes {
			if h.lanes[i].msg >= 0 {
				h.advance(i, out)
			}
		}
	}
}

// load puts lane i's next compression into h.l: a block of its current
// chunk, or a parent node of the two values on top of its stack.
func (h *b3Hasher) load(i int, msg []byte) {
	ln, l := &h.lanes[i], &h.l
	if ln.merges > 0 || ln.chunk == ln.chunks {
		left, right := &ln.stack[ln.depth-2], &ln.stack[ln.depth-1]
		for j := range 8 {
			l.m[j][i], l.m[j+8][i] = left[j], right[j]
			l.cv[j][i] = b3IV[j]
		}
		l.ctr[i], l.blen[i] = 0, b3BlockLen
		l.flags[i] = b3Parent
		if ln.chunk == ln.chunks && ln.depth == 2 {
			l.flags[i] |= b3Root
		}
		return
	}
	c := msg[ln.chunk*b3ChunkLen : min(len(msg), (ln.chunk+1)*b3ChunkLen)]
	blocks := max(1, (len(c)+b3BlockLen-1)/b3BlockLen)
	b := c[ln.block*b3BlockLen : min(len(c), (ln.block+1)*b3BlockLen)]
	if len(b) == b3BlockLen {
		for j := range 16 {
			l.m[j][i] = binary.LittleEndian.Uint32(b[4*j:])
		}
	} else {
		var pad [b3BlockLen]byte
		copy(pad[:], b)
		for j := range 16 {
			l.m[j][i] = binary.LittleEndian.Uint32(pad[4*j:])
		}
	}
	var f uint32
	if ln.block == 0 {
		f = b3ChunkStart
		for j := range 8 {
			l.cv[j][i] = b3IV[j]
		}
	}
	if ln.block == blocks-1 {
		f |= b3ChunkEnd
		if ln.chunks == 1 {
			f |= b3Root
		}
	}
	l.ctr[i], l.blen[i], l.flags[i] = uint32(ln.chunk), uint32(len(b)), f
}

// advance takes lane i's compression result: the next block, the chunk's
// value pushed and merged, or the root's value written to out (and the lane
// left idle).
func (h *b3Hasher) advance(i int, out [][32]byte) {
	ln, l := &h.lanes[i], &h.l
	if l.flags[i]&b3Root != 0 {
		d := &out[ln.msg]
		for j := range 8 {
			binary.LittleEndian.PutUint32(d[4*j:], l.cv[j][i])
		}
		ln.msg = -1
		return
	}
	var cv [8]uint32
	for j := range 8 {
		cv[j] = l.cv[j][i]
	}
	if l.flags[i]&b3Parent != 0 {
		ln.depth--
		ln.stack[ln.depth-1] = cv
		if ln.merges > 0 {
			ln.merges--
		}
		return
	}
	if l.flags[i]&b3ChunkEnd == 0 {
		ln.block++ // the chaining value stays in l.cv for the next block
		return
	}
	ln.stack[ln.depth] = cv
	ln.depth++
	ln.chunk++
	ln.block = 0
	if ln.chunk < ln.chunks {
		// Chunks done so far: ln.chunk; merge while that count is even.
		ln.merges = bits.TrailingZeros(uint(ln.chunk))
	}
}

// b3Compress16Go is b3Compress16AVX512 in Go, one lane after another: the
// reference the tests check the lane logic and the assembly against.
func b3Compress16Go(l *b3Lanes) {
	for i := range 16 {
		var v [16]uint32
		for j := range 8 {
			v[j] = l.cv[j][i]
		}
		copy(v[8:12], b3IV[:4])
		v[12], v[13], v[14], v[15] = l.ctr[i], 0, l.blen[i], l.flags[i]
		var m [16]uint32
		for j := range 16 {
			m[j] = l.m[j][i]
		}
		for r := range 7 {
			g := func(a, b, c, d, x, y int) {
				v[a] += v[b] + m[x]
				v[d] = bits.RotateLeft32(v[d]^v[a], -16)
				v[c] += v[d]
				v[b] = bits.RotateLeft32(v[b]^v[c], -12)
				v[a] += v[b] + m[y]
				v[d] = bits.RotateLeft32(v[d]^v[a], -8)
				v[c] += v[d]
				v[b] = bits.RotateLeft32(v[b]^v[c], -7)
			}
			g(0, 4, 8, 12, 0, 1)
			g(1, 5, 9, 13, 2, 3)
			g(2, 6, 10, 14, 4, 5)
			g(3, 7, 11, 15, 6, 7)
			g(0, 5, 10, 15, 8, 9)
			g(1, 6, 11, 12, 10, 11)
			g(2, 7, 8, 13, 12, 13)
			g(3, 4, 9, 14, 14, 15)
			if r < 6 {
				var p [16]uint32
				for k, s := range b3Perm {
					p[k] = m[s]
				}
				m = p
			}
		}
		for j := range 8 {
			l.cv[j][i] = v[j] ^ v[j+8]
		}
	}
}

// b3Perm is BLAKE3's message permutation, applied after each round.
var b3Perm = [16]int{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8}
