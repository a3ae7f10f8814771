package chunk

import (
	"bytes"
	"encoding/binary"
	"math"
)

// probeWindow is how many bytes the probes look at: enough for a stable
// byte histogram, small enough to cost a few percent of a chunk.
const probeWindow = 16 << 10

// floatEntropyGap is the difference in bits per byte between the most and the
// least random byte position within 4-byte words that marks float32 data.
// Normal-distributed float32 values show about 7.95 bits for the mantissa
// bytes and 2.5-3.5 bits for the sign/exponent byte; text, code and random
// bytes show the same entropy at every position.
const floatEntropyGap = 1.5

// randomPlaneEntropy: a shuffled plane at least this random is stored raw
// without trying: Huffman coding of bytes with entropy H saves about 1-H/8,
// less than the minSavingsPercent that would pay for it above 7.2 bits.
const randomPlaneEntropy = 7.2

// smallChunkWindow is the entropy sample of chunks under 16 probe windows:
// the small chunks of the warm page file would otherwise be histogrammed
// whole, which cost a fifth of compressing them. 1,024 samples per plane
// estimate the entropy about 0.2 bits low, far less than the margins of
// looksLikeFloat32 and randomPlaneEntropy.
const smallChunkWindow = 4 << 10

// planeEntropy estimates, from a sample of up to probeWindow bytes
// (smallChunkWindow for small chunks) aligned to p's start, the byte entropy (bits per byte) of each of the four positions
// within a 4-byte word, i.e. of each plane shuffle4 would make. Because chunk
// boundaries are content-defined, plane 3 need not hold the exponents; the
// callers only compare the planes, which does not depend on the phase.
func planeEntropy(p []byte) (e [4]float64, ok bool) {
	st := sampleStats(p)
	return st.ent, st.ok
}

// Whether a chunk looks like text, as far as sampleStats knows.
const (
	textUnknown int8 = iota
	textNo
	textYes
)

// probeStats is what sampleStats learns from one pass over a chunk's sample.
type probeStats struct {
	ent  [4]float64 // planeEntropy's estimates
	ok   bool       // ent is valid: the sample was long enough
	text int8       // looksLikeText of the chunk, or textUnknown
}

// sampleStats computes planeEntropy and, for chunks under 16 probe windows
// (whose entropy sample is exactly the smallChunkWindow bytes looksLikeText
// reads), looksLikeText from the same byte histograms: the warm page file's
// 32 KiB chunks otherwise paid a second, branchy, pass over their sample
// (7 % of compressing them).
func sampleStats(p []byte) (st probeStats) {
	w := probeWindow
	if len(p) < 16*probeWindow {
		w = smallChunkWindow
	}
	s := probeSample(p, w)
	n := len(s) &^ 3
	if n < smallChunkWindow {
		return st
	}
	var hist [4][256]uint32
	for i := 0; i < n; i += 4 {
		w := s[i : i+4 : i+4]
		hist[0][w[0]]++
		hist[1][w[1]]++
		hist[2][w[2]]++
		hist[3][w[3]]++
	}
	per := float64(n / 4)
	for k := range st.ent {
		st.ent[k] = entropy(&hist[k], per)
	}
	st.ok = true
	if w == smallChunkWindow && n == len(s) {
		ctl := 0
		for k := range hist {
			for c := range 0x20 {
				if c != '\t' && c != '\n' && c != '\r' && c != '\f' {
					ctl += int(hist[k][c])
				}
			}
			ctl += int(hist[k][0x7f])
		}
		st.text = textNo
		if textShare(ctl, n) {
			st.text = textYes
		}
	}
	return st
}

// looksLikeFloat32 reports whether the plane entropies are those of packed
// float32 values: one plane far less random than the most random one, which
// is nearly uniform.
func looksLikeFloat32(e [4]float64) bool {
	lo, hi := e[0], e[0]
	for _, v := range e[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return hi > 7.0 && hi-lo > floatEntropyGap
}

// probeSample returns up to n bytes from the middle of p (file headers at the
// start are less typical of a chunk than its middle), starting at an offset
// that is a multiple of 4 so sample positions match p's planes.
func probeSample(p []byte, n int) []byte {
	if len(p) <= n {
		return p
	}
	off := ((len(p) - n) / 2) &^ 3
	return p[off : off+n]
}

// entropy is the Shannon entropy in bits per byte of a histogram of total
// samples, as log2(total) - sum(c*log2(c))/total with c*log2(c) from a table:
// math.Log2 per bin was 3 % of a backup's CPU on 16 KiB warm-file chunks.
func entropy(h *[256]uint32, total float64) float64 {
	sum := 0.0
	for _, c := range h {
		if int(c) < len(cLog2c) {
			sum += cLog2c[c]
		} else {
			sum += float64(c) * math.Log2(float64(c))
		}
	}
	return math.Log2(total) - sum/total
}

// cLog2c[c] = c*log2(c) for every count a plane of a probe sample can hold.
var cLog2c = func() (t [probeWindow/4 + 1]float64) {
	for c := 2; c < len(t); c++ {
		t[c] = float64(c) * math.Log2(float64(c))
	}
	return t
}()

// samplePays compresses a sample of p and reports whether that saves
// minSavingsPercent: the cheap test that keeps incompressible chunks (media,
// archives, encrypted files) from paying for a full compression. Small chunks
// are not probed, the sample would be most of the chunk.
//
// A chunk whose middle sample does not pay gets two more samples, at a
// quarter and at three quarters of it, before it is stored raw: one sample
// misjudged chunks that are not the same throughout. An object file of Go's
// src/ (goboringcrypto_linux_amd64.syso, 2.4 MB) has a 16 KiB random table
// where some chunkings put a chunk's middle: 1 in 5 repositories (chunker
// polynomials) stored a 1.2 MB chunk raw that zstd halves, 0.5-0.6 MB more
// than the others. Incompressible chunks pay two more sample compressions
// (about 3 % of compressing them).
//
// A chunk none of whose samples pays is still compressed when it holds
// copies of its sampled content at a distance no sample sees
// (longRepeats): a 64 KiB random block repeated with shifts was stored
// raw where zstd saves 85 %.
//
// A chunk that looks like text (looksLikeText) is not probed (compress):
// source code, JSON, logs and prose always compress, so the probe's sample
// compression was all it did for them; Go's src/ has 240 files between 64
// and 512 KiB, text nearly all, each paid a 16 KiB sample compression
// before its own (docs/benchmarks.md, "Issue 18, session 16: the first
// backup of a small-file tree"). A chunk misjudged as text costs a full
// compression, and is still stored raw unless that saves
// minSavingsPercent.
func samplePays(p []byte, l Level) bool {
	if !probed(p) {
		return true
	}
	out := getBuf(probeWindow + 64)
	defer putBuf(out)
	for _, q := range [...]int{2, 1, 3} { // the middle first
		off := ((len(p) - probeWindow) * q / 4) &^ 3
		s := p[off : off+probeWindow]
		c := encoder(l).EncodeAll(s, (*out)[:0])
		*out = c[:0]
		if samplePaysOff(len(s), len(c)) {
			return true
		}
	}
	return longRepeats(p)
}

// Parameters of longRepeats: repeatSite bytes around the middle of each of
// samplePays' three samples are indexed (every position's 8 bytes),
// the chunk is probed every repeatStride bytes, and a probe whose 8
// bytes are indexed counts when the repeatVerify bytes from there equal
// those at the indexed position; repeatMinHits such probes mean the chunk
// repeats its own content at a distance its samples cannot see.
// repeatMinHits is the hits of one copy of a whole site (2048/256): a
// 32-byte string a random sample happens to share with the rest of its
// chunk (a key, a hash, a magic number) does not make it.
const (
	repeatSite    = 2 << 10
	repeatStride  = 256
	repeatVerify  = 32
	repeatMinHits = repeatSite / repeatStride
	repeatBits    = 14
)

// longRepeats reports whether p, whose probe samples do not compress,
// holds copies of its sampled content elsewhere in it: the repeats zstd
// finds at any distance within its window (the whole chunk: frames are
// single-segment) but a 16 KiB sample, which holds no repeat, cannot show.
// A file of a 64 KiB random block repeated with 1-61 byte shifts (u-dup's
// repeated.bin) was stored raw where zstd saves 85 %; so would a tar of
// duplicated media or archives, a VM image of repeated blocks, records
// embedding the same blob (docs/benchmarks.md, "Issue 18, session 23:
// repeats beyond the probe's sample"). It reads 6 KiB densely and
// len(p)/256 probes, a few microseconds per MiB, against a full
// compression (about a millisecond per MiB at restic's level) for every
// incompressible chunk; it finds no copy shorter than about
// repeatStride+repeatVerify bytes, which zstd could not make pay either
// unless there were many of them (and then a sample sees them).
func longRepeats(p []byte) bool {
	if len(p) < 4*probeWindow {
		return false
	}
	var sites [3]int
	for k, q := range [...]int{1, 2, 3} {
		sites[k] = ((len(p)-probeWindow)*q/4 + (probeWindow-repeatSite)/2) &^ 3
	}
	// tab holds 1 + the index of an indexed position (site k's i-th byte:
	// k*repeatSite+i), by a hash of its 8 bytes; 0 is empty. Later
	// positions overwrite earlier ones of the same hash.
	var tab [1 << repeatBits]uint16
	for k, s := range sites {
		w := p[s : s+repeatSite]
		for i := 0; i+8 <= len(w); i++ {
			tab[repeatHash(w[i:])] = uint16(k*repeatSite + i + 1)
		}
	}
	hits := 0
	for pos := 0; pos+repeatVerify <= len(p); pos += repeatStride {
		e := int(tab[repeatHash(p[pos:])])
		if e == 0 {
			continue
		}
		e--
		at := sites[e/repeatSite] + e%repeatSite
		if at == pos || at+repeatVerify > len(p) || !bytes.Equal(p[at:at+repeatVerify], p[pos:pos+repeatVerify]) {
			continue
		}
		if hits++; hits >= repeatMinHits {
			return true
		}
	}
	return false
}

// repeatHash is longRepeats' table slot of the 8 bytes at b's start.
func repeatHash(b []byte) uint32 {
	return uint32((binary.LittleEndian.Uint64(b) * 0x9e3779b97f4a7c15) >> (64 - repeatBits))
}

// probed reports whether samplePays samples a chunk of p's length: small
// chunks are compressed whole at once.
func probed(p []byte) bool { return len(p) >= 4*probeWindow }

// textOf is looksLikeText as a sampleStats text value.
func textOf(p []byte) int8 {
	if looksLikeText(p) {
		return textYes
	}
	return textNo
}

// shuffledSamplePays is samplePays for chunks that look like float32: it
// byte-shuffles and compresses a sample the way compressShuffled would
// compress the chunk. Data can look like floats at its sampled phase and
// still not pay: the Engram WAL, whose records carry float32 payloads, saves
// about 6 % shuffled, and compressing its multi-MiB chunks in full only to
// store them raw cost half a CPU second per GiB of WAL.
func shuffledSamplePays(p []byte, l Level, ent [4]float64, huff bool) bool {
	return shuffledSampleChoice(p, l, ent, huff) != sampleRaw
}

// What shuffledSampleChoice advises for a float-looking chunk.
const (
	sampleShuffled = iota // compress it byte-shuffled
	samplePlain           // compress it plain
	sampleRaw             // store it raw
)

// plainOverShufflePercent: a float-looking chunk whose sample compresses
// plain to within this many percent of its shuffled size is compressed
// plain. Float payloads behind variable-length record headers (the Engram
// WAL) look like floats at the sampled phase and their samples shuffle about
// as well as they compress plain, yet on the whole chunk plain zstd, which
// finds the repeated headers, saves 10 % where the shuffle saves 6 %.
// Embeddings proper compress several times better shuffled than plain.
const plainOverShufflePercent = 5

// shuffledSampleChoice compresses a sample of a float-looking chunk both
// byte-shuffled and plain and says which form to use for the whole chunk.
// Chunks under four probe windows are not probed: they are shuffled.
func shuffledSampleChoice(p []byte, l Level, ent [4]float64, huff bool) int {
	if len(p) < 4*probeWindow {
		return sampleShuffled
	}
	s := probeSample(p, probeWindow)
	out := getBuf(2*len(s) + 128)
	defer putBuf(out)
	c := compressShuffled((*out)[:0], s, l, ent, huff, nil)
	shuffled := len(c)
	c = encoder(l).EncodeAll(s, c[len(c):])
	plain := len(c) + 1 // the format byte
	*out = (*out)[:0]
	switch {
	case !samplePaysOff(len(s), shuffled) && !samplePaysOff(len(s), plain):
		return sampleRaw
	case plain*100 <= shuffled*(100+plainOverShufflePercent):
		return samplePlain
	default:
		return sampleShuffled
	}
}

// textCompressLevel is the level text is compressed at under LevelFastest
// (and so LevelDefault): source code, JSON, logs and other text compress
// about 5 % better at zstd's default level than at its fastest, for about
// 10-50 % more CPU on them ("better" saves 7 % for twice the CPU: it made a
// first backup of Go's src/ 1.2x restic's CPU, so the default level was
// chosen); binary data (floats, the Engram WAL, cold segments) gains little
// and keeps the fastest level (docs/chunking.md, "Issue 18: text").
const textCompressLevel = LevelBalanced

// FileLevel is the level to compress the chunks of a file at, given its
// slash-separated path relative to the space (or backup) root and the level
// asked for: Engram's tier files (WAL segments, cold segments, the warm page
// file; ParamsFor's kinds) keep l, whose fastest level compresses their
// binary chunks almost as well as zstd's default (docs/chunking.md); every
// other file under LevelFastest (or LevelDefault), which is what `memento
// backup PATH` stores, is compressed at LevelBalanced, text or not, as
// restic compresses everything. On Go's src/ that stores its 761 binary
// files (testdata: object files, images, archives) 3.5 % smaller (233 KB)
// for about 0.1 CPU s; an Engram data dir has a few MiB of such files (hot
// files, metadata), which cost milliseconds more.
func FileLevel(relPath string, l Level) Level {
	if r, err := l.resolve(); err == nil && r == LevelFastest && kindOf(relPath) == kindDefault {
		return LevelBalanced
	}
	return l
}

// textLevel is the level to compress src at, given the level asked for:
// textCompressLevel when l is LevelFastest and src looks like text, else l.
func textLevel(l Level, src []byte, text int8) Level {
	if l == LevelFastest && (text == textYes || text == textUnknown && looksLikeText(src)) {
		return textCompressLevel
	}
	return l
}

// maxTextControlPermille: a sample with more control bytes than this per
// thousand is not text. Random bytes have 125 (32 of 256 values), text has
// none but tab, newline, carriage return and form feed.
const maxTextControlPermille = 10

// looksLikeText reports whether a sample of up to smallChunkWindow bytes
// from the middle of p is text: almost no control bytes other than
// whitespace. Bytes >= 0x80 (UTF-8) count as text.
//
// NUL bytes are counted first (bytes.Count, vectorized): binary data (the
// zero padding and headers of warm pages, WAL record headers) has more of
// them than text may hold in all, and is refused without the byte-by-byte
// count, which was a sixth of compressing a warm page file's chunk.
func looksLikeText(p []byte) bool {
	s := probeSample(p, smallChunkWindow)
	if len(s) == 0 || !textShare(bytes.Count(s, []byte{0}), len(s)) {
		return false
	}
	ctl := 0
	for _, c := range s {
		ctl += int(textControl[c])
	}
	return textShare(ctl, len(s))
}

// textControl[c] is 1 for the bytes looksLikeText counts as control bytes:
// below 0x20 except tab, newline, carriage return and form feed, and DEL.
var textControl = func() (t [256]uint8) {
	for c := range 0x20 {
		if c != '\t' && c != '\n' && c != '\r' && c != '\f' {
			t[c] = 1
		}
	}
	t[0x7f] = 1
	return t
}()

// textShare reports whether ctl control bytes among n is text's share.
func textShare(ctl, n int) bool { return ctl*1000 <= n*maxTextControlPermille }
