//go:build study

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

// walRecordShuffleFast is walRecordShuffle as a writer might do it, for its
// CPU: the phase from the histograms of up to 1 KiB of each record, each
// record's whole words shuffled by shufflePlanes straight into the plane
// buffers (the bytes before its phase and after its last word into a
// fifth, raw stream), and only the exponent plane (plane 3) Huffman-coded;
// the planes whose sampled entropy is under randomPlaneEntropy too.
func walRecordShuffleFast(dst, src []byte, buf *[5][]byte) []byte {
	var planes [5][]byte
	for k := range planes {
		planes[k] = buf[k][:0]
		if cap(planes[k]) < len(src)/4+4096 {
			planes[k] = make([]byte, 0, len(src)/4+4096)
		}
	}
	records := 0
	for len(src) > 0 {
		n := bytes.Index(src[min(len(src), 4):], []byte(walMagic))
		if n < 0 {
			n = len(src)
		} else {
			n += 4
		}
		rec := src[:n]
		src = src[n:]
		records++
		var h [4][256]uint16
		s := rec[:min(len(rec), 1024)]
		for i := 0; i+4 <= len(s); i += 4 {
			h[0][s[i]]++
			h[1][s[i+1]]++
			h[2][s[i+2]]++
			h[3][s[i+3]]++
		}
		best, bestDistinct := 0, 257
		for k := range 4 {
			d := 0
			for _, c := range h[k] {
				if c != 0 {
					d++
				}
			}
			if d < bestDistinct {
				best, bestDistinct = k, d
			}
		}
		start := (best + 1) & 3 // words whose byte 3 is the exponent
		start = min(start, len(rec))
		words := (len(rec) - start) / 4
		planes[4] = append(planes[4], rec[:start]...)
		var p [4][]byte
		for k := range 4 {
			l := len(planes[k])
			planes[k] = planes[k][:l+words]
			p[k] = planes[k][l:]
		}
		shufflePlanes(p, rec[start:start+4*words])
		planes[4] = append(planes[4], rec[start+4*words:]...)
	}
	*buf = planes
	dst = append(dst, formatShuffle4Huff)
	dst = binary.AppendUvarint(dst, uint64(records))
	dst = append(dst, make([]byte, records)...) // the phases
	for k, p := range planes {
		if k < 4 {
			if st := sampleStats(p); k < 3 && st.ok && st.ent[0] >= randomPlaneEntropy {
				dst = appendSection(dst, planeRaw, p)
				continue
			}
		} else {
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
