package chunk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
)

// Stored form 0x04 (formatWALRecords) is for chunks of Engram WAL segments
// (docs/engram-format.md, "WAL v1"): their records carry float32 embeddings,
// each at its own byte offset behind a variable-length header and id, so a
// chunk's floats sit at every byte phase and shuffle4 of the whole chunk
// never pays (form 0x01 stores them: zstd finds no matches in them and
// Huffman-codes every byte to exploit one byte in four). Form 0x04 lists the
// chunk's float runs (one per record's embedding, cut at the chunk's ends)
// and stores the four byte planes of all runs' words as 0x03 stores a float
// chunk's (the exponent plane Huffman-coded, the random mantissa planes raw),
// and every other byte (headers, ids, text, the records cut by the chunk's
// ends) in one zstd frame:
//
//	0x04 | uvarint length L | uvarint runs n
//	     | section layout: 2n uvarints, per run: gap (bytes before it since
//	       the previous run's end), words (its float32 count, >= 1)
//	     | section rest: the L - 4W bytes outside the runs, in order
//	     | 4 sections: plane k = byte k of every run's words, runs in order (W bytes each)
//
// where W is the sum of the runs' words and a section is 0x03's
// [kind byte][uvarint n][n bytes]: kind 0 raw, 1 a zstd frame, 2 Huffman
// blocks (planes only). The layout is explicit, so decoding depends on no
// WAL parsing: any bytes round-trip, and the writer's record scan (which
// trusts nothing: a bad header only costs ratio) can change without a new
// format. Written only into repositories of format 4 and later
// (Pipeline.UseWALRecords, repo.Config.WALRecords), for WAL chunks and for
// chunks of the warm page file (warmrec.go: each used page's embedding a
// run).
const formatWALRecords byte = 0x04

// WAL v1 entry layout (docs/engram-format.md) as far as the run scan needs it.
const (
	walHeaderSize    = 32
	walMaxPayload    = 64 << 20
	walMaxIDLen      = 1024
	walTypeStore     = 1
	walTypeUpdate    = 2
	walRecordFixed   = 2 + 4 + 2 + 4 // id_len, confidence, dim, content_len
	walMinRunWords   = 16            // shorter embeddings stay in the rest section
	walMinFloatShare = 2             // runs must cover at least 1/walMinFloatShare of the chunk
	walSampleWords   = 64            // words of each run the planes' entropy is sampled from
)

// walRun is one float run of a chunk: gap bytes after the previous run's
// end (or the chunk's start), then words float32 words.
type walRun struct{ gap, words int }

// walMagic is the entry magic 0xDEADBEEF as it is stored (little-endian).
const walMagic = "\xef\xbe\xad\xde"

// isWALMagic reports whether b starts with the entry magic.
func isWALMagic(b []byte) bool { return bytes.HasPrefix(b, []byte(walMagic)) }

// indexWALMagic returns the offset of the first entry magic in b, or -1.
func indexWALMagic(b []byte) int { return bytes.Index(b, []byte(walMagic)) }

// walEmbedding parses the record whose magic is at src[p:] and returns the
// offset and word count of its embedding within src (cut at src's end), and
// the offset its next record starts at. ok is false when the header does not
// describe a store or update record whose fields fit its payload; next is
// then meaningless.
func walEmbedding(src []byte, p int) (start, words, next int, ok bool) {
	if len(src)-p < walHeaderSize+2 {
		return 0, 0, 0, false
	}
	h := src[p:]
	plen := int(binary.LittleEndian.Uint32(h[4:]))
	typ := binary.LittleEndian.Uint16(h[24:])
	if plen > walMaxPayload || typ != walTypeStore && typ != walTypeUpdate {
		return 0, 0, 0, false
	}
	idLen := int(binary.LittleEndian.Uint16(h[walHeaderSize:]))
	if idLen == 0 || idLen > walMaxIDLen || len(h) < walHeaderSize+2+idLen+6 {
		return 0, 0, 0, false
	}
	dim := int(binary.LittleEndian.Uint16(h[walHeaderSize+2+idLen+4:]))
	if walRecordFixed+idLen+4*dim > plen {
		return 0, 0, 0, false
	}
	start = p + walHeaderSize + 2 + idLen + 6
	end := min(start+4*dim, len(src))
	return start, (end - start) / 4, p + walHeaderSize + plen, true
}

// walRuns appends to runs the embeddings of the records of a WAL chunk, in
// order and not overlapping, and returns them with their total words. The
// bytes before the first entry magic (the end of a record the chunk's cut
// split) and records that do not parse are left out; after a record whose
// successor is not at its end, the scan looks for the next magic from the
// end of its embedding.
func walRuns(runs []walRun, src []byte) ([]walRun, int) {
	words, last := 0, 0 // last: end of the previous run
	p := indexWALMagic(src)
	for p >= 0 && p < len(src) {
		start, w, next, ok := walEmbedding(src, p)
		from := p + 4
		if ok && w >= walMinRunWords {
			runs = append(runs, walRun{gap: start - last, words: w})
			words += w
			last = start + 4*w
			from = last
		}
		if ok && next >= from && isWALMagic(src[min(next, len(src)):]) {
			p = next
			continue
		}
		if from >= len(src) {
			break
		}
		i := indexWALMagic(src[from:])
		if i < 0 {
			break
		}
		p = from + i
	}
	return runs, words
}

// compressWALRecords stores a WAL chunk in form 0x04 when its float runs
// cover at least half of it and the form saves minSavingsPercent; ok false
// means the caller should store it another way. The runs' mantissa planes
// whose sampled entropy says they are random are shuffled straight into
// dst, as compressShuffled does.
func compressWALRecords(dst, src []byte, l Level, bufs *bufList) (out []byte, ok bool) {
	rp := getRuns()
	defer putRuns(rp)
	runs, words := walRuns((*rp)[:0], src)
	*rp = runs
	if words == 0 || 4*words*walMinFloatShare < len(src) {
		return dst, false
	}
	return compressRuns(dst, src, runs, words, runEntropy(src, runs, walSampleWords, smallChunkWindow/4), l, false, bufs)
}

// runLists keeps walRuns' run lists between chunks: a 1 MiB WAL chunk of
// 700-byte records has ~1,500 runs, and a list grown by append from a few
// dozen each time was ~0.1 s of a first backup of 16 spaces of such records
// (docs/benchmarks.md, "Issue 18, session 24").
var runLists = sync.Pool{New: func() any { return new([]walRun) }}

func getRuns() *[]walRun { return runLists.Get().(*[]walRun) }

func putRuns(p *[]walRun) {
	*p = (*p)[:0]
	runLists.Put(p)
}

// compressRuns stores src in form 0x04 with the given float runs (words
// in all, at least one) and reports whether the form saves
// minSavingsPercent; ok false means the caller should store it another
// way.
//
// ent is the planes' sampled entropy (runEntropy): planes from
// randomPlaneEntropy up are stored raw, the others Huffman-coded.
// rawRestLits stores the rest section's literals raw at LevelFastest
// (rawLitEncoder) unless it looks like text: for the warm page file, whose
// rest is mostly zero padding and page headers that zstd's matches take.
func compressRuns(dst, src []byte, runs []walRun, words int, ent [4]float64, l Level, rawRestLits bool, bufs *bufList) (out []byte, ok bool) {
	dst = append(dst[:0], formatWALRecords)
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	dst = binary.AppendUvarint(dst, uint64(len(runs)))

	// The layout and the rest, each a zstd frame when that pays.
	tmp := bufs.get(len(src) - 4*words + 8*len(runs))
	defer bufs.put(tmp)
	layout := (*tmp)[:0]
	for _, r := range runs {
		layout = binary.AppendUvarint(layout, uint64(r.gap))
		layout = binary.AppendUvarint(layout, uint64(r.words))
	}
	dst = appendZstdSection(dst, layout, encoder(l))
	rest, pos := layout[len(layout):], 0
	for _, r := range runs {
		rest = append(rest, src[pos:pos+r.gap]...)
		pos += r.gap + 4*r.words
	}
	rest = append(rest, src[pos:]...)
	switch tl := textLevel(l, rest, textUnknown); {
	case rawRestLits && tl == LevelFastest:
		dst = appendRawLitSection(dst, rest, tl, bufs)
	default:
		dst = appendZstdSection(dst, rest, encoder(tl))
	}

	// The planes: the leading random ones straight into dst, the others
	// through pl.
	lead := 0
	for lead < 4 && ent[lead] >= randomPlaneEntropy {
		lead++
	}
	dst = slices.Grow(dst, lead*(words+1+binary.MaxVarintLen64))
	var p [4][]byte
	for k := range lead {
		dst = append(dst, planeRaw)
		dst = binary.AppendUvarint(dst, uint64(words))
		p[k] = dst[len(dst) : len(dst)+words : len(dst)+words]
		dst = dst[:len(dst)+words]
	}
	pl := bufs.get((4 - lead) * words)
	defer bufs.put(pl)
	free := (*pl)[:(4-lead)*words]
	for k := lead; k < 4; k++ {
		p[k], free = free[:words:words], free[words:]
	}
	pos, at := 0, 0
	for _, r := range runs {
		pos += r.gap
		shufflePlanes([4][]byte{p[0][at : at+r.words], p[1][at : at+r.words], p[2][at : at+r.words], p[3][at : at+r.words]},
			src[pos:pos+4*r.words])
		pos += 4 * r.words
		at += r.words
	}
	for k := lead; k < 4; k++ {
		if ent[k] >= randomPlaneEntropy {
			dst = appendSection(dst, planeRaw, p[k])
			continue
		}
		hdr := len(dst)
		dst = appendHuffBlocks(append(dst, planeHuff, 0, 0, 0, 0, 0), p[k])
		if n := len(dst) - hdr - 6; pays(len(p[k]), n) {
			putUvarint5(dst[hdr+1:hdr+6], uint64(n))
		} else {
			dst = appendSection(dst[:hdr], planeRaw, p[k])
		}
	}
	if !pays(len(src), len(dst)) {
		return dst, false
	}
	return dst, true
}

// appendRawLitSection appends data as a section as appendZstdSection does
// with rawLitEncoder(l) and, when that section is over 1/rawLitKeep of
// data (the matches took less than the rest: its literals are more than
// the padding and headers of Engram's pages: pages that did not parse,
// ids, text), also with encoder(l),
// keeping the smaller: raw literals there stored 17 % more than
// Huffman-coded ones in a 32 KiB chunk of 5 pages and 3 that did not
// parse (TestWarmRecordsRawLitsFallBack), a third more with more such
// pages, while no rest frame of the benchmark data sets' warm page files
// is over a fifth of its rest (the review of issue 18, session 14).
func appendRawLitSection(dst, data []byte, l Level, bufs *bufList) []byte {
	hdr := len(dst)
	dst = appendZstdSection(dst, data, rawLitEncoder(l))
	if len(data) < minCompressSize || (len(dst)-hdr)*rawLitKeep <= len(data) {
		return dst // stored raw (too small for a frame), or the matches took it
	}
	tmp := bufs.get(len(data) + 64)
	defer bufs.put(tmp)
	alt := appendZstdSection((*tmp)[:0], data, encoder(l))
	if len(alt) < len(dst)-hdr {
		dst = append(dst[:hdr], alt...)
	}
	*tmp = alt[:0] // keep the buffer appendZstdSection may have grown
	return dst
}

// rawLitKeep: a rest frame with raw literals of at most 1/rawLitKeep of its
// data is kept without trying Huffman-coded literals (appendRawLitSection).
const rawLitKeep = 4

// appendZstdSection appends data as a section: a zstd frame by enc when it
// saves minSavingsPercent, else raw.
func appendZstdSection(dst, data []byte, enc *pooledEncoder) []byte {
	if len(data) < minCompressSize {
		return appendSection(dst, planeRaw, data)
	}
	hdr := len(dst)
	dst = enc.EncodeAll(data, append(dst, planeZstd, 0, 0, 0, 0, 0))
	if n := len(dst) - hdr - 6; pays(len(data), n) {
		putUvarint5(dst[hdr+1:hdr+6], uint64(n))
		return dst
	}
	return appendSection(dst[:hdr], planeRaw, data)
}

// runEntropy estimates the byte entropy of each plane of the runs' words
// from up to probeWindow bytes: the first perRun words of each run, in
// order. A sample under minWords words reports every plane as not random
// (all are coded).
func runEntropy(src []byte, runs []walRun, perRun, minWords int) (e [4]float64) {
	var hist [4][256]uint32
	n, pos := 0, 0
	for _, r := range runs {
		pos += r.gap
		w := src[pos : pos+4*min(r.words, perRun)]
		pos += 4 * r.words
		for i := 0; i+4 <= len(w); i += 4 {
			hist[0][w[i]]++
			hist[1][w[i+1]]++
			hist[2][w[i+2]]++
			hist[3][w[i+3]]++
		}
		if n += len(w) / 4; n >= probeWindow/4 {
			break
		}
	}
	if n < minWords {
		return e
	}
	for k := range e {
		e[k] = entropy(&hist[k], float64(n))
	}
	return e
}

// decodeWALRecords decodes the body of form 0x04 (after its format byte)
// into dst[:0] (see formatWALRecords). Raw sections are read where they lie
// in src; only coded ones are decoded, into a buffer of at most L bytes.
func decodeWALRecords(dst, src []byte, limit int) ([]byte, error) {
	size, src, err := storedLength(src, limit)
	if err != nil {
		return dst[:0], err
	}
	total := uint64(size)
	nruns, n := binary.Uvarint(src)
	if n <= 0 || nruns > total/4 {
		return dst[:0], fmt.Errorf("run count: %w", ErrCorrupt)
	}
	src = src[n:]
	// A run's two uvarints take at most 8 bytes: both are below L < 2^28.
	maxLayout := int(nruns) * 8
	lbuf := getBuf(maxLayout)
	defer putBuf(lbuf)
	layout, _, src, err := decodeSection((*lbuf)[:0], src, -1, maxLayout, false)
	if err != nil {
		return dst[:0], fmt.Errorf("layout: %w", err)
	}
	// Check the layout against L before decoding anything else.
	words, gaps := 0, 0
	b := layout
	for i := range nruns {
		g, k := binary.Uvarint(b)
		if k <= 0 || g > total {
			return dst[:0], fmt.Errorf("layout: run %d: bad gap: %w", i, ErrCorrupt)
		}
		w, m := binary.Uvarint(b[k:])
		if m <= 0 || w == 0 || w > total/4 {
			return dst[:0], fmt.Errorf("layout: run %d: bad word count: %w", i, ErrCorrupt)
		}
		b = b[k+m:]
		gaps += int(g)
		words += int(w)
		if gaps+4*words > size {
			return dst[:0], fmt.Errorf("layout: runs end past length %d: %w", size, ErrCorrupt)
		}
	}
	if len(b) != 0 {
		return dst[:0], fmt.Errorf("layout: %d trailing bytes: %w", len(b), ErrCorrupt)
	}
	restLen := size - 4*words
	tmp := getBuf(size)
	defer putBuf(tmp)
	decoded := (*tmp)[:0]
	rest, decoded, src, err := decodeSection(decoded, src, restLen, restLen, false)
	if err != nil {
		return dst[:0], fmt.Errorf("rest: %w", err)
	}
	pl, err := decodePlanes(decoded, src, [4]int{words, words, words, words}, true)
	if err != nil {
		return dst[:0], err
	}
	if cap(dst) < size {
		dst = make([]byte, size)
	}
	dst = dst[:size]
	pos, at := 0, 0
	for b := layout; len(b) > 0; {
		g, k := binary.Uvarint(b)
		w, m := binary.Uvarint(b[k:])
		b = b[k+m:]
		pos += copy(dst[pos:pos+int(g)], rest[:g])
		rest = rest[g:]
		end := at + int(w)
		unshufflePlanes(dst[pos:pos+4*int(w)], [4][]byte{pl[0][at:end], pl[1][at:end], pl[2][at:end], pl[3][at:end]})
		pos += 4 * int(w)
		at = end
	}
	copy(dst[pos:], rest) // len(rest) == size-pos by the sums above
	return dst, nil
}

// decodeSection reads one section [kind][uvarint n][n bytes] from the front
// of src: exactly want bytes, or with want < 0 up to limit; kind 2 (Huffman
// blocks) only with huff and a known size. A raw section's bytes are
// returned where they lie in src; a coded one is appended to buf. It
// returns the section's bytes, buf, and what follows the section in src.
func decodeSection(buf, src []byte, want, limit int, huff bool) (sec, _, next []byte, err error) {
	if len(src) < 2 {
		return nil, buf, nil, fmt.Errorf("truncated: %w", ErrCorrupt)
	}
	kind := src[0]
	length, n := binary.Uvarint(src[1:])
	if n <= 0 || length > uint64(len(src)-1-n) {
		return nil, buf, nil, fmt.Errorf("bad length: %w", ErrCorrupt)
	}
	body, next := src[1+n:1+n+int(length)], src[1+n+int(length):]
	start := len(buf)
	switch {
	case kind == planeRaw:
		if want >= 0 && len(body) != want || len(body) > limit {
			return nil, buf, nil, fmt.Errorf("%d raw bytes, want %d: %w", len(body), want, ErrCorrupt)
		}
		return body, buf, next, nil
	case kind == planeZstd:
		buf, err = decodeFrame(buf, body, want, limit)
	case kind == planeHuff && huff && want >= 0:
		buf, err = decodeHuffBlocks(buf, body, want)
	default:
		return nil, buf, nil, fmt.Errorf("unknown kind %d: %w", kind, ErrCorrupt)
	}
	if err != nil {
		return nil, buf[:start], nil, err
	}
	return buf[start:], buf, next, nil
}
