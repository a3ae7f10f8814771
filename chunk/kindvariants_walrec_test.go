package chunk

import (
	"bytes"
	"encoding/binary"
)

// walRecordShuffle estimates (it writes no decodable form) what a WAL
// stored form that shuffles each record's bytes at the record's own float
// phase would store: the chunk is cut at every WAL entry magic
// (0xDEADBEEF, little-endian), each record's bytes are split into four
// planes at the phase whose byte has the lowest entropy (the float
// exponents), the planes of all records concatenated, and each plane
// Huffman-coded in huffBlockSize blocks (appendHuffBlocks) unless its
// entropy is at least randomPlaneEntropy (raw). One byte a record is
// counted for its phase. The returned slice has the estimated size.
func walRecordShuffle(dst, src []byte) []byte {
	magic := []byte{0xef, 0xbe, 0xad, 0xde}
	var planes [4][]byte
	records := 0
	for len(src) > 0 {
		n := bytes.Index(src[min(len(src), 4):], magic)
		if n < 0 {
			n = len(src)
		} else {
			n += 4
		}
		rec := src[:n]
		src = src[n:]
		records++
		var h [4][256]uint32
		for i, c := range rec {
			h[i&3][c]++
		}
		best, bestE := 0, 9.0
		for k := range 4 {
			if e := entropy(&h[k], float64(len(rec)/4+1)); e < bestE {
				best, bestE = k, e
			}
		}
		// plane 3 takes the exponent byte: word starts at best+1.
		for i, c := range rec {
			planes[(i-best-1)&3] = append(planes[(i-best-1)&3], c)
		}
	}
	dst = append(dst, formatShuffle4Huff)
	dst = binary.AppendUvarint(dst, uint64(records))
	dst = append(dst, make([]byte, records)...) // the phases
	for _, p := range planes {
		var h [256]uint32
		for _, c := range p {
			h[c]++
		}
		if len(p) == 0 || entropy(&h, float64(len(p))) >= randomPlaneEntropy {
			dst = appendSection(dst, planeRaw, p)
			continue
		}
		hdr := len(dst)
		dst = appendHuffBlocks(append(dst, planeHuff, 0, 0, 0, 0, 0), p)
		if !pays(len(p), len(dst)-hdr-6) {
			dst = appendSection(dst[:hdr], planeRaw, p)
		}
	}
	return dst
}
