package chunk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// decodeWholeRef decodes a formatShuffle4Huff stored form the way every
// plane was decoded before decodeBlockPlanes: whole planes first
// (decodeWholePlanes), the reference the block-by-block decoder must equal.
func decodeWholeRef(src []byte) ([]byte, error) {
	size, body, err := storedLength(src[1:], MaxChunkSize)
	if err != nil {
		return nil, err
	}
	q := size / 4
	return decodeWholePlanes(nil, body, size, [4]int{q, q, q, size - 3*q}, true)
}

// blockPlaneForms are formatShuffle4Huff stored forms that decodeShuffled
// decodes block by block: planes of one and of many Huffman blocks, a
// last block shorter than minHuffBlock (stored raw), RLE blocks, raw and
// Huffman planes mixed, lengths that are not a multiple of 4.
func blockPlaneForms(t *testing.T) map[string][]byte {
	t.Helper()
	rle := genFloats(600_001, 5)
	for i := 0; i+3 < len(rle); i += 4 {
		rle[i+3] = 0x3f // the exponent plane: RLE blocks
		rle[i+2] &= 1
	}
	forms := map[string][]byte{}
	for _, c := range []struct {
		name string
		data []byte
		ent  [4]float64
	}{
		{"1 MiB floats, raw mantissas", genFloats(1<<20, 1), [4]float64{8, 8, 0, 0}},
		{"3 MiB + 3 floats, all coded", genFloats(3<<20+3, 2), [4]float64{}},
		{"two blocks a plane + 3, raw last block", genFloats(8*huffBlockSize+3, 3), [4]float64{8, 0, 0, 0}},
		{"odd length, one block", genFloats(100_003, 4), [4]float64{8, 8, 0, 0}},
		{"rle and raw blocks", rle, [4]float64{8, 0, 0, 0}},
	} {
		s := compressShuffled(nil, c.data, LevelFastest, c.ent, true, nil)
		size, body, err := storedLength(s[1:], MaxChunkSize)
		if err != nil || s[0] != formatShuffle4Huff || size != len(c.data) {
			t.Fatalf("%s: stored form 0x%02x of %d bytes: %v", c.name, s[0], size, err)
		}
		q := size / 4
		if _, ok := blockPlanes(body, [4]int{q, q, q, size - 3*q}); !ok {
			t.Fatalf("%s: not decoded block by block", c.name)
		}
		out, err := Decompress(nil, s)
		if err != nil || !bytes.Equal(out, c.data) {
			t.Fatalf("%s: decoded %d bytes (%v), not the input", c.name, len(out), err)
		}
		forms[c.name] = s
	}
	return forms
}

// TestBlockPlanesAsWhole: decoding formatShuffle4Huff block by block gives
// the bytes and the errors decoding whole planes gives, for valid stored
// forms and for every truncation and byte flip tried.
func TestBlockPlanesAsWhole(t *testing.T) {
	check := func(what string, src []byte) {
		t.Helper()
		got, gerr := decodeShuffled(nil, src[1:], MaxChunkSize, true)
		want, werr := decodeWholeRef(src)
		switch {
		case fmt.Sprint(gerr) != fmt.Sprint(werr):
			t.Fatalf("%s: error %v, decoding whole planes gives %v", what, gerr, werr)
		case gerr == nil && !bytes.Equal(got, want):
			t.Fatalf("%s: %d bytes differ from the %d decoding whole planes gives", what, len(got), len(want))
		}
	}
	for name, s := range blockPlaneForms(t) {
		check(name, s)
		for i := len(s) - 1; i > 1; i -= 1 + len(s)/60 {
			check(fmt.Sprint(name, ": truncated to ", i), s[:i])
		}
		b := bytes.Clone(s)
		for i := 2; i < len(b); i += 1 + len(b)/250 {
			b[i] ^= 0x5a
			check(fmt.Sprint(name, ": byte ", i, " flipped"), b)
			b[i] ^= 0x5a
		}
	}
}

// Hand-made pieces of form 0x03 for the decoder's tests: a raw plane
// section, a planeHuff section of the blocks given, a raw block of m zero
// bytes, and a stored form of size plaintext bytes of the sections given.
func sectionRaw(b []byte) []byte { return appendSection(nil, planeRaw, b) }

func sectionHuff(blocks ...[]byte) []byte {
	return appendSection(nil, planeHuff, bytes.Join(blocks, nil))
}

func huffRawBlock(m int) []byte { return append([]byte{huffBlockRaw}, make([]byte, m)...) }

func form03(size int, secs ...[]byte) []byte {
	b := binary.AppendUvarint([]byte{formatShuffle4Huff}, uint64(size))
	return append(b, bytes.Join(secs, nil)...)
}

// TestBlockPlanesErrors: form 0x03's damaged planes give the error texts
// decoding whole planes gives, naming the plane and wrapping ErrCorrupt.
func TestBlockPlanesErrors(t *testing.T) {
	const n = huffBlockSize + 100 // a plane of two blocks
	raw, huff, rawBlock, form := sectionRaw, sectionHuff, huffRawBlock, form03
	zeros := make([]byte, n)
	for _, c := range []struct {
		name, want string
		b          []byte
	}{
		{"valid", "", form(4*n, raw(zeros), raw(zeros), huff(rawBlock(huffBlockSize), rawBlock(100)), huff(rawBlock(huffBlockSize), []byte{huffBlockRLE, 9}))},
		{"second block truncated", "plane 2: raw huffman block: truncated", form(4*n, raw(zeros), raw(zeros), huff(rawBlock(huffBlockSize), rawBlock(99)), raw(zeros))},
		{"second block missing", "plane 3: huffman block: truncated", form(4*n, raw(zeros), raw(zeros), raw(zeros), huff(rawBlock(huffBlockSize)))},
		{"bad block mode", "plane 1: huffman block mode 7", form(4*n, raw(zeros), huff([]byte{7}), raw(zeros), raw(zeros))},
		{"trailing block bytes", "plane 2: huffman plane: 1 trailing bytes", form(4*n, raw(zeros), raw(zeros), huff(rawBlock(huffBlockSize), rawBlock(100), []byte{0}), raw(zeros))},
		{"tail in a block of its own", "plane 3: raw huffman block: truncated", form(4*n+2, raw(zeros), raw(zeros), raw(zeros), huff(rawBlock(huffBlockSize), rawBlock(100)))},
		// Damaged in two planes: the lowest plane's first fault, as
		// decoding whole planes reports it, not the one block order meets
		// first (a later plane's earlier block; any plane's block before
		// an earlier plane's trailing bytes).
		{"plane 0's second block and plane 1's first", "plane 0: huffman block mode 7", form(4*n, huff(rawBlock(huffBlockSize), []byte{7}), huff([]byte{9}), raw(zeros), raw(zeros))},
		{"plane 0's trailing bytes and plane 2's second block", "plane 0: huffman plane: 1 trailing bytes", form(4*n, huff(rawBlock(huffBlockSize), rawBlock(100), []byte{0}), raw(zeros), huff(rawBlock(huffBlockSize)), raw(zeros))},
		{"plane 1's trailing bytes and plane 3's tail block", "plane 1: huffman plane: 2 trailing bytes", form(4*n+2, raw(zeros), huff(rawBlock(huffBlockSize), rawBlock(100), []byte{0, 0}), raw(zeros), huff(rawBlock(huffBlockSize), rawBlock(100)))},
	} {
		if _, werr := decodeWholeRef(c.b); c.want != "" && fmt.Sprint(werr) != c.want+": "+ErrCorrupt.Error() {
			t.Errorf("%s: decoding whole planes gives %v, want %q", c.name, werr, c.want)
		}
		out, err := Decompress(nil, c.b)
		switch {
		case c.want == "" && (err != nil || len(out) != 4*n):
			t.Errorf("%s: %v (%d bytes)", c.name, err, len(out))
		case c.want != "" && (err == nil || err.Error() != "decompress shuffled: "+c.want+": "+ErrCorrupt.Error()):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}
