package chunk

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// Chunks of Engram's warm page file (docs/engram-format.md, "warm tier")
// are stored in form 0x04 too (formatWALRecords: the layout is explicit,
// so its decoder knows nothing of pages): a used 4 KiB page starts with
// "EWP1" and holds one WAL v1 memory record behind a 24-byte header, zero
// padded, and a free page is zeros. Each used page's embedding is one run;
// the page headers, ids, text and padding go to the rest section, where
// zstd takes the padding almost for free, as it did in the whole chunk. A
// whole-chunk shuffle (form 0x03) does not pay there: the padding and the
// headers make every plane's entropy low and the chunk fails
// looksLikeFloat32 (docs/benchmarks.md, session 10, "Shuffle the warm page
// file").

// Warm page layout as far as the run scan needs it.
const (
	warmPageSize   = 4096
	warmPageHeader = 24 // magic, page number, LSN, kind, payload length, CRC
	warmPageUsed   = 1  // the kind of a page that holds a record
	warmMagic      = "EWP1"
)

// The planes' entropy of a warm chunk is sampled from the first
// warmSampleWords words of each run (a 32 KiB chunk holds at most 8
// pages), and trusted from warmMinSample words on: the plug-in entropy of
// 512 random bytes is about 7.6 bits, above randomPlaneEntropy, so the
// random mantissa planes are stored raw instead of Huffman-coded for
// nothing (with WAL's 64 words a run, 8 runs were too few to trust, and
// coding all four planes cost 1.6x the CPU of zstd on 384-float pages).
//
// A chunk whose runs hold fewer than warmMinWords words (pages of tiny
// embeddings, or one or two pages) is not worth the form's fixed cost
// (five section headers, a Huffman table): measured, 16-float pages lost
// 7-21 bytes a chunk against zstd.
const (
	warmMinWords    = 128
	warmSampleWords = 128
	warmMinSample   = 512
)

// warmEmbedding parses the page whose magic is at src[p:] and returns the
// offset and word count of its record's embedding within src (cut at
// src's end). ok is false when the page is not a used page whose record's
// fields fit its payload and the page.
func warmEmbedding(src []byte, p int) (start, words int, ok bool) {
	h := src[p:]
	if len(h) < warmPageHeader+2 {
		return 0, 0, false
	}
	plen := int(binary.LittleEndian.Uint16(h[18:]))
	if binary.LittleEndian.Uint16(h[16:]) != warmPageUsed || plen > warmPageSize-warmPageHeader {
		return 0, 0, false
	}
	rec := h[warmPageHeader:]
	idLen := int(binary.LittleEndian.Uint16(rec))
	if idLen == 0 || idLen > walMaxIDLen || len(rec) < 2+idLen+6 {
		return 0, 0, false
	}
	dim := int(binary.LittleEndian.Uint16(rec[2+idLen+4:]))
	if walRecordFixed+idLen+4*dim > plen {
		return 0, 0, false
	}
	start = p + warmPageHeader + 2 + idLen + 6
	end := min(start+4*dim, len(src))
	return start, (end - start) / 4, true
}

// warmRuns appends to runs the embeddings of the used pages of a chunk of
// a warm page file, in order and not overlapping, and returns them with
// their total words; offGrid reports a used page that does not start at a
// multiple of warmPageSize in the chunk (a chunk cut off the page grid,
// as parameter sets 1 and 2 cut the file). It trusts nothing: the scan
// goes from one page magic to the one a page further, and where that is
// not a magic (a free page, garbage) it looks for the next magic after
// the current page's run; a page that does not parse only leaves its
// bytes in the rest section.
func warmRuns(runs []walRun, src []byte) (_ []walRun, words int, offGrid bool) {
	last := 0 // end of the previous run
	p := bytes.Index(src, []byte(warmMagic))
	for p >= 0 {
		from := p + 4
		if start, w, ok := warmEmbedding(src, p); ok && w >= walMinRunWords {
			runs = append(runs, walRun{gap: start - last, words: w})
			words += w
			last = start + 4*w
			from = last
			offGrid = offGrid || p%warmPageSize != 0
		}
		if next := p + warmPageSize; next >= from && bytes.HasPrefix(src[min(next, len(src)):], []byte(warmMagic)) {
			p = next
			continue
		}
		if from >= len(src) {
			break
		}
		i := bytes.Index(src[from:], []byte(warmMagic))
		if i < 0 {
			break
		}
		p = from + i
	}
	return runs, words, offGrid
}

// compressWarmRecords stores a chunk of a warm page file in form 0x04
// when its runs hold at least warmMinWords words, no two runs start
// alike, and the form saves minSavingsPercent; ok false means the caller
// should store it another way (compress, with huff as in compressKind).
// Where the form is sure to pay (see below), the rest section's literals
// are stored raw (compressRuns' rawRestLits): Engram's pages leave zero
// padding and headers there, which zstd's matches take, and the Huffman
// stage on the few literals left cost a fifth of compressing the chunk
// for 0.9-1.4 % of its stored size (docs/benchmarks.md, "Issue 18,
// session 14"); a rest whose matches take less than that (pages that did
// not parse leave their floats there) is also tried with Huffman-coded
// literals (appendRawLitSection), and the chunks compared with compress's
// form keep them.
//
// Form 0x04 is smaller than zstd of the whole chunk when the runs are
// what Engram's pages hold: embeddings of full-precision floats (random
// mantissa bytes, which zstd finds no matches in) and no two alike. Two
// runs that start with the same 8 bytes are most likely one embedding
// stored twice (a record copied to another page), which zstd's matches
// take in the whole chunk and the raw planes would store twice: such a
// chunk is stored as before. When the sampled mantissa planes (0 and 1)
// are not random (embeddings of zeros, few values, sparse) or the chunk
// is cut off the page grid (it starts with the end of a page whose
// header it lacks, floats that stay in the rest section; chunks of the
// file's current parameters are always on the grid), zstd may do better:
// the chunk gets form 0x04 only when that is smaller than the form
// compress makes, which is then made too.
func compressWarmRecords(dst, src []byte, l Level, huff bool, bufs *bufList) (out []byte, ok bool) {
	runs, words, offGrid := warmRuns(make([]walRun, 0, 16), src)
	if words < warmMinWords || repeatedRun(src, runs) {
		return dst, false
	}
	ent := runEntropy(src, runs, warmSampleWords, warmMinSample)
	sure := !offGrid && ent[0] >= randomPlaneEntropy && ent[1] >= randomPlaneEntropy
	out, ok = compressRuns(dst, src, runs, words, ent, l, sure, bufs)
	if !ok || sure {
		return out, ok
	}
	tmp := bufs.get(len(src) + 64)
	defer bufs.put(tmp)
	alt, compressed := compress((*tmp)[:0], src, l, shuffleAuto, true, huff, bufs)
	if compressed && len(alt) < len(out) {
		out = append(out[:0], alt...)
	}
	if compressed {
		*tmp = alt[:0] // keep the buffer compress may have grown
	}
	return out, true
}

// repeatedRun reports whether two of the runs start with the same 8 bytes
// (every run has at least walMinRunWords words).
func repeatedRun(src []byte, runs []walRun) bool {
	var buf [16]uint64
	heads := buf[:0]
	pos := 0
	for _, r := range runs {
		pos += r.gap
		heads = append(heads, binary.LittleEndian.Uint64(src[pos:]))
		pos += 4 * r.words
	}
	slices.Sort(heads)
	for i := 1; i < len(heads); i++ {
		if heads[i] == heads[i-1] {
			return true
		}
	}
	return false
}
