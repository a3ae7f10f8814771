//go:build study

package chunk

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	"github.com/klauspost/compress/huff0"
)

// Issue 18, session 10 (docs/benchmarks.md, "the CPU of compressing"): an
// experiment measured by TestKindVariants (variants "litframe", "walmode")
// and not taken. A literals-only zstd frame (RFC 8878) is what zstd's
// fastest level writes for data in which its match finder finds nothing:
// every block a compressed block whose literals section is Huffman-coded and
// whose sequences section is empty. The default profile's Engram WAL is such
// data; writing the frame directly (no match search, one Huffman table per
// chunk) cost 30 % less CPU there for 0.06 % more bytes, but other WALs
// (wal-heavy's, and an unseen wal-heavy with 1,536-dim embeddings) have
// matches that zstd's frame saves 0.2-3 % with, unevenly from chunk to chunk,
// and deciding per segment from a chunk compressed both ways (walMode) cost
// the gain back or stored more bytes. It is an ordinary zstd frame (format
// byte formatZstd): every reader decodes it.

// litBlockSize is the largest block of a zstd frame (Block_Maximum_Size).
const litBlockSize = 128 << 10

// Block types of a zstd block header.
const (
	zstdBlockRaw        = 0
	zstdBlockRLE        = 1
	zstdBlockCompressed = 2
)

// Literals block types of a zstd literals section header.
const (
	litCompressed = 2 // a Huffman tree description, then the streams
	litTreeless   = 3 // the streams, coded with the previous block's tree
)

// appendLitFrame appends to dst a single-segment zstd frame, without
// checksum, that decodes to src, made of literals-only blocks: each block
// Huffman-coded (huff0, four streams) when that saves at least 1/16 of it,
// else stored raw (or RLE). A block reuses the previous block's Huffman
// table (a treeless literals block) whenever that still saves 1/16 of it
// (huff0.ReusePolicyPrefer): the table is built once per chunk of
// stationary data instead of once per block (zstd's encoder builds a new one
// for every block and compares, ReusePolicyAllow), for 0.05 % more bytes on
// the Engram WAL.
func appendLitFrame(dst, src []byte) []byte {
	dst = appendFrameHeader(dst, len(src))
	s := huffPool.Get().(*huff0.Scratch)
	defer huffPool.Put(s)
	s.Reuse = huff0.ReusePolicyNone // a frame starts without a table
	s.WantLogLess = 4
	for first := true; first || len(src) > 0; first = false {
		b := src[:min(len(src), litBlockSize)]
		src = src[len(b):]
		last := len(src) == 0
		if len(b) < 1024 {
			dst = appendBlockHeader(dst, last, zstdBlockRaw, len(b))
			dst = append(dst, b...)
			continue
		}
		out, reused, err := huff0.Compress4X(b, s)
		if err == huff0.ErrUseRLE {
			dst = appendBlockHeader(dst, last, zstdBlockRLE, len(b))
			dst = append(dst, b[0])
			continue
		}
		typ := byte(litCompressed)
		if reused {
			typ = litTreeless
		}
		hdr := litHeaderSize(len(b), len(out))
		if err != nil || hdr+len(out)+1 >= len(b) {
			// huff0 may have kept a table the decoder never sees: the
			// next block must describe its own.
			s.Reuse = huff0.ReusePolicyNone
			dst = appendBlockHeader(dst, last, zstdBlockRaw, len(b))
			dst = append(dst, b...)
			continue
		}
		dst = appendBlockHeader(dst, last, zstdBlockCompressed, hdr+len(out)+1)
		dst = appendLitHeader(dst, typ, len(b), len(out))
		dst = append(dst, out...)
		dst = append(dst, 0) // Number_of_Sequences: none
		s.Reuse = huff0.ReusePolicyPrefer
	}
	return dst
}

// appendFrameHeader appends a zstd frame header: magic number, a
// single-segment descriptor without checksum or dictionary, and the
// content size in the smallest field that holds it.
func appendFrameHeader(dst []byte, size int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, 0xFD2FB528)
	const single = 1 << 5
	switch {
	case size < 256:
		dst = append(dst, single, byte(size))
	case size < 65536+256:
		dst = append(dst, 1<<6|single)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(size-256))
	case uint64(size) < 1<<32:
		dst = append(dst, 2<<6|single)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(size))
	default:
		dst = append(dst, 3<<6|single)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(size))
	}
	return dst
}

// appendBlockHeader appends a zstd block header: Last_Block, Block_Type,
// Block_Size (the regenerated size for RLE blocks).
func appendBlockHeader(dst []byte, last bool, typ, size int) []byte {
	h := uint32(typ)<<1 | uint32(size)<<3
	if last {
		h |= 1
	}
	return append(dst, byte(h), byte(h>>8), byte(h>>16))
}

// litHeaderSize is the size of the literals section header of a
// four-stream Huffman section of regen bytes coded in comp bytes.
func litHeaderSize(regen, comp int) int {
	switch n := max(bits.Len(uint(regen)), bits.Len(uint(comp))); {
	case n <= 10:
		return 3
	case n <= 14:
		return 4
	default:
		return 5
	}
}

// appendLitHeader appends the literals section header of a four-stream
// Huffman section (RFC 8878 3.1.1.3.1.1): type, Size_Format, then
// Regenerated_Size and Compressed_Size in 10, 14 or 18 bits each.
func appendLitHeader(dst []byte, typ byte, regen, comp int) []byte {
	var h uint64
	switch n := litHeaderSize(regen, comp); n {
	case 3:
		h = uint64(typ) | 1<<2 | uint64(regen)<<4 | uint64(comp)<<14
	case 4:
		h = uint64(typ) | 2<<2 | uint64(regen)<<4 | uint64(comp)<<18
	default:
		h = uint64(typ) | 3<<2 | uint64(regen)<<4 | uint64(comp)<<22
	}
	for i := range litHeaderSize(regen, comp) {
		dst = append(dst, byte(h>>(8*i)))
	}
	return dst
}

// walRecheck: while a WAL segment's verdict is literals-only, its every
// walRecheck-th chunk is compressed both ways, zstd and literals-only, to
// keep or revise the verdict (walMode).
const walRecheck = 16

// litSlackPermille: a literals-only frame is chosen when it is at most this
// many per mille bigger than zstd's frame of the same chunk. On the default
// profile's WAL the two differ by 0.02 %; on wal-heavy's, whose records
// repeat within a chunk, zstd's matches save 3 % and zstd is kept.
const litSlackPermille = 1

// walMode (experiment, see above) is the running verdict of one WAL segment (one Split): whether
// its chunks are written as literals-only frames. Chunks of one segment are
// alike (the same kind of records), so the verdict of a chunk compressed
// both ways holds for the next ones. A zstd verdict is final for the
// segment (zstd is never bigger, only slower: checking again would cost a
// segment whose records repeat, wal-heavy's, CPU for nothing); a
// literals-only verdict is checked again every walRecheck chunks, which
// bounds what a segment whose records change on the way can lose. Safe for
// concurrent use.
type walMode struct {
	n   atomic.Int64
	lit atomic.Int32 // 0 unknown, 1 literals-only, 2 zstd
}

// compressWAL (experiment, see above) would be compressKind for a chunk of
// a WAL segment compressed within a Split, whose verdict m is: at LevelFastest, a chunk is written as
// a literals-only zstd frame (appendLitFrame) when the segment's verdict
// says that is within litSlackPermille of zstd's frame, which costs about
// 30 % less CPU on such chunks; the first and every walRecheck-th chunk is
// compressed both ways and the smaller kept. Other levels are compressKind.
func compressWAL(dst, src []byte, level Level, m *walMode, bufs *bufList) ([]byte, bool) {
	l, err := level.resolve()
	if err != nil || l != LevelFastest || m == nil || len(src) < minCompressSize {
		return compressKind(dst, src, level, kindWAL, 0, bufs)
	}
	if !samplePays(src, l) {
		return src, false
	}
	verdict := m.lit.Load()
	check := verdict == 0 || verdict == 1 && m.n.Add(1)%walRecheck == 0
	var out []byte
	switch {
	case check:
		out = appendLitFrame(append(dst[:0], formatZstd), src)
		tmp := bufs.get(len(src) + 64)
		z := encoder(l).EncodeAll(src, append((*tmp)[:0], formatZstd))
		if int64(len(out))*1000 <= int64(len(z))*(1000+litSlackPermille) {
			m.lit.Store(1)
		} else {
			m.lit.Store(2)
		}
		if len(z) < len(out) {
			out = append(out[:0], z...)
		}
		*tmp = z[:0]
		bufs.put(tmp)
	case verdict == 1:
		out = appendLitFrame(append(dst[:0], formatZstd), src)
	default:
		out = encoder(l).EncodeAll(src, append(dst[:0], formatZstd))
	}
	if !pays(len(src), len(out)) {
		return src, false
	}
	return out, true
}
