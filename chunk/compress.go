package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/zstd"
)

// The stored form of a compressed chunk is one format byte followed by a
// single zstd frame that records its content size. An uncompressed chunk is
// stored as its raw bytes and has no format byte: the repository records
// which of the two it holds (Chunk.Compressed).
const (
	// formatZstd: the frame decodes to the plaintext.
	formatZstd byte = 0x01
	// formatZstdShuffle4: the frame decodes to shuffle4(plaintext).
	formatZstdShuffle4 byte = 0x02
	// formatShuffle4Huff: as formatZstdShuffle4, with a third section
	// kind, planeHuff (Huffman-coded blocks, no zstd frame). Written since
	// issue 18's third round; 0x02 is still read.
	formatShuffle4Huff byte = 0x03
	// formatWALRecords (0x04, walrec.go): a WAL (or warm page file,
	// warmrec.go) chunk's float runs shuffled at their own phase, the
	// other bytes in a zstd frame.
)

// minSavingsPercent: a compressed form must be at least this much smaller than
// the plaintext, or the chunk is stored raw. zstd's fastest level runs at
// about 330 MB/s per core on data that barely compresses (the Engram WAL,
// whose float32 payloads sit at every byte phase, saves 6 %), which made it
// the slowest stage of a backup: 1.5 CPU seconds per GiB of WAL to save 6 %
// of its size. At 10 % the WAL is stored raw after a 16 KiB probe, while the
// warm page file (34 %) and cold segments (15 %) still compress.
const minSavingsPercent = 5

// weakShufflePercent: a byte-shuffled chunk that saves less than this is
// compressed plain as well and the smaller form kept (embeddings proper save
// 15 % and more shuffled and are compressed once).
const weakShufflePercent = 12

// minCompressSize: shorter inputs are always stored raw (the zstd frame and
// format byte overhead eat any saving).
const minCompressSize = 64

// shuffleMode says whether to byte-shuffle before compressing.
type shuffleMode int

const (
	shuffleAuto shuffleMode = iota
	shuffleNever
	shuffleAlways
)

// encKey names one of the process-wide encoders: a level, and whether the
// literals of its blocks are stored raw (rawLitEncoder).
type encKey struct {
	l       Level
	rawLits bool
}

var (
	encMu    sync.Mutex
	encoders = map[encKey]*pooledEncoder{}
)

// encoder returns the process-wide encoder of a level, safe for concurrent
// use: a pool of zstd encoders that lets GOMAXPROCS EncodeAll calls run at
// once, kept and reused, never collected and re-allocated (re-creating
// match tables per chunk is costly).
func encoder(l Level) *pooledEncoder { return encoderOf(encKey{l: l}) }

// rawLitEncoder returns the process-wide encoder of a level that stores
// its literals raw: matches and sequences as encoder's, without the
// Huffman stage (a table built, written and applied per block). Its
// frames are ordinary zstd frames (raw literals sections), decoded by
// every reader, and faster to decode. For small inputs whose savings are
// the matches (the rest section of a warm page file's chunk: zero padding
// and page headers), where the Huffman stage cost more CPU than it saved
// bytes (docs/benchmarks.md, "Issue 18, session 14").
func rawLitEncoder(l Level) *pooledEncoder { return encoderOf(encKey{l: l, rawLits: true}) }

// pooledEncoder is a set of single-threaded zstd encoders of one setting,
// one per slot, GOMAXPROCS slots (GOMAXPROCS when the setting is first
// used: the count stays when GOMAXPROCS changes later, as the runtime
// does when the CPU quota changes, as zstd.Encoder's concurrency did),
// each encoder made when its slot is first used and kept: at most that
// many inputs are compressed at once, the others wait. A call takes the
// slot of the CPU it runs on (currentCPU), or the next free one, so the
// match tables (1.2 MiB at LevelBalanced) a core uses are the ones it
// wrote last, still in its caches. One
// zstd.Encoder of concurrency GOMAXPROCS, as before, handed its block
// encoders to whichever goroutine asked, first in, first out: about every
// other input started on tables last written on the other core, and a
// first backup of Go's src/ (12,650 inputs, most under 16 KiB) spent a
// third more CPU in EncodeAll than with the slots (1.31 s against 0.98,
// docs/benchmarks.md, "Issue 18, session 18: zstd's CPU inside a
// small-file backup"). Every encoder of a setting writes the same frame
// for the same input: a frame depends on its input and the options only.
type pooledEncoder struct {
	k     encKey
	sem   chan struct{} // one token per input being compressed
	slots []encoderSlot
}

type encoderSlot struct {
	mu sync.Mutex // held while its encoder compresses
	e  *zstd.Encoder
}

// EncodeAll is zstd.Encoder.EncodeAll on the encoder of the slot of the
// CPU it runs on, or of the next free slot.
func (p *pooledEncoder) EncodeAll(src, dst []byte) []byte {
	p.sem <- struct{}{}
	// A call holds its token while it holds a slot, so fewer slots than
	// len(slots) are held by others: the loop finds a free one.
	i := currentCPU() % len(p.slots)
	for !p.slots[i].mu.TryLock() {
		i = (i + 1) % len(p.slots)
	}
	s := &p.slots[i]
	done := false
	defer func() {
		// A panic inside (a fault on src that the caller recovers from)
		// gives the slot and the token back, as zstd.Encoder.EncodeAll
		// gives its block encoder back, and drops the encoder it left
		// in the middle of a frame.
		if !done {
			s.e = nil
		}
		s.mu.Unlock()
		<-p.sem
	}()
	if s.e == nil {
		s.e = newEncoder(p.k)
	}
	dst = s.e.EncodeAll(src, dst)
	done = true
	return dst
}

func encoderOf(k encKey) *pooledEncoder {
	encMu.Lock()
	defer encMu.Unlock()
	if e, ok := encoders[k]; ok {
		return e
	}
	n := runtime.GOMAXPROCS(0)
	p := &pooledEncoder{k: k, sem: make(chan struct{}, n), slots: make([]encoderSlot, n)}
	encoders[k] = p
	return p
}

// newEncoder makes a single-threaded zstd encoder of a setting.
func newEncoder(k encKey) *zstd.Encoder {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(k.l.zstd()),
		zstd.WithEncoderConcurrency(1),
		// No content checksum: every stored form is sealed (AEAD or MAC)
		// and its plaintext checked against its keyed BLAKE3 ID, so the
		// frame's xxhash64 proved nothing more and cost four bytes a frame
		// (a blob of Go's src/ is one file: 45 KiB of 37 MiB) and a hash
		// pass on every read. Frames written before carry one; readers
		// skip it (decoder).
		zstd.WithEncoderCRC(false),
		// Always write the content size (klauspost omits it for inputs under
		// 256 bytes otherwise): Decompress needs it to bound its output.
		zstd.WithSingleSegment(true),
		// History of one window and a block, not two windows: the same
		// frames for every input up to MaxChunkSize (a frame's history is
		// never moved down; TestEncoderLowMemSameFrames), and 8 MiB less
		// kept per encoder that compressed a large chunk: 24 MiB of a first
		// backup's 200 MiB heap limit, whose garbage collections it halves
		// on data dirs of many spaces (docs/benchmarks.md, "Issue 18,
		// session 20").
		zstd.WithLowerEncoderMem(true),
		// Entropy-code blocks in which no matches were found: float planes and
		// WAL records have skewed bytes but few repeats, and the fast levels
		// otherwise store such blocks raw (measured: +8 % on plain float data).
		zstd.WithAllLitEntropyCompression(!k.rawLits),
		zstd.WithNoEntropyCompression(k.rawLits),
	)
	if err != nil {
		panic(fmt.Sprintf("chunk: zstd encoder: %v", err)) // options are constant
	}
	return e
}

var (
	decOnce sync.Once
	dec     *zstd.Decoder
)

// maxDecoderWindow bounds the window a frame may declare; decodeFrame only
// accepts single-segment frames, whose window is their (limit-checked)
// content size, so this is a second line of defence.
const maxDecoderWindow = 256 << 20

func decoder() *zstd.Decoder {
	decOnce.Do(func() {
		var err error
		dec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxWindow(maxDecoderWindow),
			zstd.WithDecoderMaxMemory(1<<40), // the real bound is cap(dst), see decompress
			zstd.WithDecodeAllCapLimit(true),
			// Callers authenticate what they decompress (the seal) and
			// check the plaintext (the blob's keyed BLAKE3): the frame
			// checksum of older frames is not computed (L2 verify, restore).
			zstd.IgnoreChecksum(true),
		)
		if err != nil {
			panic(fmt.Sprintf("chunk: zstd decoder: %v", err)) // options are constant
		}
	})
	return dec
}

// Compress appends the stored form of src to dst[:0] and reports whether it
// is compressed. When compression does not save minSavingsPercent (or level
// is LevelNone, or src is tiny) it returns src itself, uncompressed. Float32
// data is detected and stored byte-shuffled, which is what makes embeddings
// compress at all (docs/chunking.md). Safe for concurrent use.
func Compress(dst, src []byte, level Level) (stored []byte, compressed bool) {
	return compress(dst, src, level, shuffleAuto, true, false, nil)
}

// CompressFastest is Compress at LevelFastest whatever src holds: without
// the text rule (textLevel), which compresses text at LevelBalanced. For
// JSON that is mostly hex IDs and numbers, repository index files and
// trees, where that level is slower and no smaller: 5.3 MB of an index of
// 46,000 blobs, 2.09 MB in 32 ms at the fastest level against 2.16 MB in
// 54 ms (docs/benchmarks.md, "Issue 18, session 21: the first backup of
// small-file trees").
func CompressFastest(dst, src []byte) (stored []byte, compressed bool) {
	if len(src) < minCompressSize {
		return src, false
	}
	out := encoder(LevelFastest).EncodeAll(src, append(dst[:0], formatZstd))
	if !pays(len(src), len(out)) {
		return src, false
	}
	return out, true
}

// CompressFile is Compress for a chunk of a file, by its slash-separated
// path relative to the space (or backup) root, as Pipeline.SplitFile
// compresses it: at FileLevel's level and with the strategy of the file's
// kind (compressKind).
func CompressFile(dst, src []byte, relPath string, level Level) (stored []byte, compressed bool) {
	return compressKind(dst, src, FileLevel(relPath, level), kindOf(relPath), 0, nil)
}

// CompressWAL is CompressFile for a chunk of a WAL segment, for callers
// that only store WAL (the WAL archive): it stores the chunk as a backup of
// the segment does. records allows form 0x04, as Pipeline.UseWALRecords
// does: only for a repository whose format promises its readers know it
// (repo.Config.WALRecords).
func CompressWAL(dst, src []byte, level Level, records bool) (stored []byte, compressed bool) {
	var f forms
	if records {
		f = formsWALRecords
	}
	return compressKind(dst, src, level, kindWAL, f, nil)
}

// forms are the stored forms beyond 0x01 and 0x02 a writer may use: each is
// allowed by a repository format (repo.Config), as binaries before it
// cannot decode it.
type forms uint8

const (
	// formsHuff allows 0x03 (Pipeline.UseHuffPlanes).
	formsHuff forms = 1 << iota
	// formsWALRecords allows 0x04 for WAL chunks and warm page file
	// chunks (Pipeline.UseWALRecords).
	formsWALRecords
)

// compressKind is Compress with the strategy of a kind of Engram file: WAL
// segments are compressed plain, without the float32 test and the shuffled
// probes. Their records carry float32 payloads behind variable-length
// headers, so a chunk's floats sit at every byte phase and shuffling never
// pays, but a 16 KiB sample often sits at one phase and looks like floats:
// the probe then compressed the sample twice, and on one WAL chunk in five
// (the shuffled form saving under weakShufflePercent) the whole chunk twice,
// shuffled and plain, to keep the plain form (docs/chunking.md, "Issue 18:
// WAL chunks plain"). On Engram WAL this stores what Compress stores, with
// less work; a WAL segment of bare floats would be stored plain.
//
// With formsWALRecords, a WAL chunk is stored in form 0x04 (each record's
// embedding shuffled at its own phase, walrec.go) when its records cover at
// least half of it and the form pays, else as above; a chunk of the warm
// page file too (each used page's embedding a run, warmrec.go) when its
// pages hold real embeddings, else as before.
//
// Its temporary buffers come from bufs (nil: the process-wide pools).
func compressKind(dst, src []byte, level Level, kind fileKind, f forms, bufs *bufList) ([]byte, bool) {
	mode := shuffleAuto
	if kind == kindWAL {
		mode = shuffleNever
	}
	if kind == kindWAL || kind == kindWarm {
		if l, err := level.resolve(); f&formsWALRecords != 0 && err == nil && l != LevelNone && len(src) >= minCompressSize {
			var out []byte
			var ok bool
			if kind == kindWAL {
				out, ok = compressWALRecords(dst, src, l, bufs)
			} else {
				out, ok = compressWarmRecords(dst, src, l, f&formsHuff != 0, bufs)
			}
			if ok {
				return out, true
			}
			dst = out[:0]
		}
	}
	return compress(dst, src, level, mode, true, f&formsHuff != 0, bufs)
}

// compress is Compress with the shuffle decision and the incompressibility
// probe under the caller's control, for measurement; huff lets it write
// formatShuffle4Huff (see Pipeline.UseHuffPlanes), else it writes
// formatZstdShuffle4. Its temporary buffers come from bufs (nil: the
// process-wide pools).
func compress(dst, src []byte, level Level, mode shuffleMode, probe bool, huff bool, bufs *bufList) ([]byte, bool) {
	l, err := level.resolve()
	if err != nil || l == LevelNone || len(src) < minCompressSize {
		return src, false
	}
	var out []byte
	var st probeStats
	if mode != shuffleNever {
		st = sampleStats(src)
	}
	ent, ok := st.ent, st.ok
	switch {
	case mode == shuffleAlways, mode == shuffleAuto && ok && looksLikeFloat32(ent):
		if !ok {
			ent = [4]float64{} // unknown: try zstd on every plane
		}
		if probe {
			switch shuffledSampleChoice(src, l, ent, huff) {
			case sampleRaw:
				return src, false
			case samplePlain:
				out = append(dst[:0], formatZstd)
				out = encoder(l).EncodeAll(src, out)
				if !pays(len(src), len(out)) {
					return src, false
				}
				return out, true
			}
		}
		out = compressShuffled(dst[:0], src, l, ent, huff, bufs)
		if probe && int64(len(out))*100 > int64(len(src))*(100-weakShufflePercent) {
			// A weak shuffle: the sample misjudged a WAL-like chunk; keep
			// the plain form if it is smaller.
			tmp := bufs.get(len(src) + 64)
			plain := encoder(l).EncodeAll(src, append((*tmp)[:0], formatZstd))
			if len(plain) < len(out) {
				out = append(out[:0], plain...)
			}
			*tmp = plain[:0]
			bufs.put(tmp)
		}
	default:
		text := st.text
		if probe && probed(src) {
			if text == textUnknown {
				text = textOf(src)
			}
			if text != textYes && !samplePays(src, l) {
				return src, false
			}
		}
		out = append(dst[:0], formatZstd)
		out = encoder(textLevel(l, src, text)).EncodeAll(src, out)
	}
	if !pays(len(src), len(out)) {
		return src, false
	}
	return out, true
}

// compressShuffled writes formatShuffle4Huff: the format byte, the plaintext
// length as a uvarint, then the four planes of shuffle4(src), each as a
// section [kind byte][uvarint length][bytes], kind planeRaw, planeHuff
// (Huffman-coded blocks, appendHuffBlocks) or, for planes under one block
// whose zstd frame at level l is smaller, planeZstd. Planes are coded
// separately because entropy coding works on a block as a whole: a block
// mixing the low-entropy exponent plane with random mantissa planes saves
// nothing. Planes whose sampled entropy shows they are random are stored raw
// without trying. Without huff it writes formatZstdShuffle4, the same with
// planeRaw and planeZstd sections only, which every reader decodes.
func compressShuffled(dst, src []byte, l Level, ent [4]float64, huff bool, bufs *bufList) []byte {
	q := len(src) / 4
	size := [4]int{q, q, q, len(src) - 3*q}
	if huff {
		dst = append(dst, formatShuffle4Huff)
	} else {
		dst = append(dst, formatZstdShuffle4)
	}
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	// The leading planes that are random by their sampled entropy (a
	// float's low mantissa bytes, planes 0 and 1) are stored raw at places
	// known in advance: shuffle them straight there instead of into the
	// temporary buffer and copying them again (memory traffic was a good
	// part of this function's cost). The others go through tmp.
	lead, direct := 0, 0
	for lead < 4 && ent[lead] >= randomPlaneEntropy {
		direct += size[lead]
		lead++
	}
	dst = slices.Grow(dst, direct+lead*(1+binary.MaxVarintLen64))
	var p [4][]byte
	for k := range lead {
		dst = append(dst, planeRaw)
		dst = binary.AppendUvarint(dst, uint64(size[k]))
		p[k] = dst[len(dst) : len(dst)+size[k] : len(dst)+size[k]]
		dst = dst[:len(dst)+size[k]]
	}
	tmp := bufs.get(len(src) - direct)
	defer bufs.put(tmp)
	rest := (*tmp)[:len(src)-direct]
	for k := lead; k < 4; k++ {
		p[k], rest = rest[:size[k]:size[k]], rest[size[k]:]
	}
	shufflePlanes(p, src)
	for k := lead; k < 4; k++ {
		plane := p[k]
		if ent[k] >= randomPlaneEntropy {
			dst = appendSection(dst, planeRaw, plane)
			continue
		}
		// Reserve a maximal uvarint for the length, then patch it: avoids
		// compressing into a temporary buffer.
		hdr := len(dst)
		if !huff {
			dst = append(dst, planeZstd, 0, 0, 0, 0, 0)
			dst = encoder(l).EncodeAll(plane, dst)
		} else {
			dst = append(dst, planeHuff, 0, 0, 0, 0, 0)
			dst = appendHuffBlocks(dst, plane)
		}
		n := len(dst) - hdr - 6
		if huff && len(plane) < huffBlockSize {
			// A small chunk's plane (the warm page file's) may hold runs
			// (zero padding, free pages) that zstd's matches store almost
			// for free and Huffman coding cannot: keep the smaller.
			dst, n = smallerZstdPlane(dst, hdr, n, plane, l, bufs)
		}
		if !pays(len(plane), n) {
			dst = appendSection(dst[:hdr], planeRaw, plane)
			continue
		}
		putUvarint5(dst[hdr+1:hdr+6], uint64(n))
	}
	return dst
}

// smallerZstdPlane compresses plane as a zstd frame and, when that is
// smaller than the n-byte section body at dst[hdr+6:], replaces the
// section's kind and body with it. It returns dst and the body length.
func smallerZstdPlane(dst []byte, hdr, n int, plane []byte, l Level, bufs *bufList) ([]byte, int) {
	tmp := bufs.get(len(plane) + 64)
	defer bufs.put(tmp)
	z := encoder(l).EncodeAll(plane, (*tmp)[:0])
	*tmp = z[:0]
	if len(z) >= n {
		return dst, n
	}
	dst[hdr] = planeZstd
	return append(dst[:hdr+6], z...), len(z)
}

// huffBlockSize is the plaintext size of the blocks of a planeHuff section
// (the last block of a plane may be shorter); part of the stored form.
// huff0 codes at most huff0.BlockSizeMax bytes at once.
const huffBlockSize = 128 << 10

// Block modes of a planeHuff section.
const (
	huffBlockRaw  byte = 0 // the block's bytes
	huffBlockRLE  byte = 1 // one byte, repeated for the whole block
	huffBlockHuff byte = 2 // uvarint n, then n bytes: a huff0 table and 4 streams
)

// minHuffBlock: shorter blocks are stored raw (huff0's 4-stream form needs
// a jump table and a Huffman table, and its decoder rejects tiny inputs).
const minHuffBlock = 64

var huffPool = sync.Pool{New: func() any { return new(huff0.Scratch) }}

// appendHuffBlocks appends the body of a planeHuff section: the plane cut
// in huffBlockSize blocks, each [mode byte] then raw bytes, one RLE byte,
// or [uvarint n][n bytes of huff0 4X data with its own table]. Why not a
// zstd frame: zstd's fast match finder finds short repeats in an exponent
// plane that cost more as sequences than they save as literals, and it
// spends most of its time looking for them; huff0 alone stored the
// exponent planes of the 1 GiB bench set's cold segments 17 % smaller in
// an eighth of the CPU (docs/chunking.md, "Issue 18, third round").
func appendHuffBlocks(dst, plane []byte) []byte {
	s := huffPool.Get().(*huff0.Scratch)
	defer huffPool.Put(s)
	s.Reuse = huff0.ReusePolicyNone // every block carries its own table
	for len(plane) > 0 {
		b := plane[:min(len(plane), huffBlockSize)]
		plane = plane[len(b):]
		if len(b) < minHuffBlock {
			dst = append(append(dst, huffBlockRaw), b...)
			continue
		}
		out, _, err := huff0.Compress4X(b, s)
		switch {
		case err == huff0.ErrUseRLE:
			dst = append(dst, huffBlockRLE, b[0])
		case err != nil || len(out)+binary.MaxVarintLen32 >= len(b):
			dst = append(append(dst, huffBlockRaw), b...)
		default:
			dst = append(dst, huffBlockHuff)
			dst = binary.AppendUvarint(dst, uint64(len(out)))
			dst = append(dst, out...)
		}
	}
	return dst
}

// decodeHuffBlocks decodes a planeHuff section body into want bytes
// appended to dst.
func decodeHuffBlocks(dst, body []byte, want int) ([]byte, error) {
	s := huffPool.Get().(*huff0.Scratch)
	defer huffPool.Put(s)
	for left := want; left > 0; {
		n := min(left, huffBlockSize)
		left -= n
		var err error
		if dst, body, err = decodeHuffBlock(dst, body, n, s); err != nil {
			return dst, err
		}
	}
	if len(body) != 0 {
		return dst, fmt.Errorf("huffman plane: %d trailing bytes: %w", len(body), ErrCorrupt)
	}
	return dst, nil
}

// decodeHuffBlock decodes the block of n plaintext bytes at the front of a
// planeHuff section body, appended to dst, and returns what follows it.
func decodeHuffBlock(dst, body []byte, n int, s *huff0.Scratch) (_, rest []byte, _ error) {
	if len(body) == 0 {
		return dst, body, fmt.Errorf("huffman block: truncated: %w", ErrCorrupt)
	}
	mode := body[0]
	body = body[1:]
	switch mode {
	case huffBlockRaw:
		if len(body) < n {
			return dst, body, fmt.Errorf("raw huffman block: truncated: %w", ErrCorrupt)
		}
		return append(dst, body[:n]...), body[n:], nil
	case huffBlockRLE:
		if len(body) < 1 {
			return dst, body, fmt.Errorf("rle huffman block: truncated: %w", ErrCorrupt)
		}
		for range n {
			dst = append(dst, body[0])
		}
		return dst, body[1:], nil
	case huffBlockHuff:
		m, k := binary.Uvarint(body)
		if k <= 0 || m > uint64(len(body)-k) {
			return dst, body, fmt.Errorf("huffman block: bad length: %w", ErrCorrupt)
		}
		data := body[k : k+int(m)]
		body = body[k+int(m):]
		if n < minHuffBlock {
			return dst, body, fmt.Errorf("huffman block of %d bytes: %w", n, ErrCorrupt)
		}
		tab, rest, err := huff0.ReadTable(data, s)
		if err != nil {
			return dst, body, fmt.Errorf("huffman table: %v: %w", err, ErrCorrupt)
		}
		start := len(dst)
		dst = slices.Grow(dst, n)
		out, err := tab.Decoder().Decompress4X(dst[start:start:start+n], rest)
		if err != nil {
			return dst[:start], body, fmt.Errorf("huffman block: %v: %w", err, ErrCorrupt)
		}
		if len(out) != n || &out[0] != &dst[:start+1][start] {
			return dst[:start], body, fmt.Errorf("huffman block: %d bytes, want %d: %w", len(out), n, ErrCorrupt)
		}
		return dst[:start+n], body, nil
	}
	return dst, body, fmt.Errorf("huffman block mode %d: %w", mode, ErrCorrupt)
}

// Section kinds of formatZstdShuffle4 (raw and zstd) and
// formatShuffle4Huff (all three).
const (
	planeRaw  byte = 0
	planeZstd byte = 1
	planeHuff byte = 2
)

func appendSection(dst []byte, kind byte, data []byte) []byte {
	dst = append(dst, kind)
	dst = binary.AppendUvarint(dst, uint64(len(data)))
	return append(dst, data...)
}

// putUvarint5 writes v as a uvarint padded to exactly 5 bytes (continuation
// bits on the first four), which every uvarint reader accepts. v < 2^35.
func putUvarint5(b []byte, v uint64) {
	for i := range 4 {
		b[i] = byte(v) | 0x80
		v >>= 7
	}
	b[4] = byte(v)
}

// planes splits a shuffle4 output of length L into its four planes; the last
// also holds the L%4 trailing bytes.
func planes(sh []byte) [4][]byte {
	q := len(sh) / 4
	return [4][]byte{sh[:q], sh[q : 2*q], sh[2*q : 3*q], sh[3*q:]}
}

// pays reports whether storing n bytes as m saves at least minSavingsPercent.
func pays(n, m int) bool {
	return int64(m)*100 <= int64(n)*(100-minSavingsPercent)
}

// probeSavingsPercent: what a 16 KiB probe sample must save for the whole
// chunk to be compressed. Lower than minSavingsPercent because a sample has
// less history to match than its chunk: Engram WAL samples save 2-5 % where
// their 1 MiB chunks save 8-10 %. Incompressible data saves nothing on either.
const probeSavingsPercent = 2

// samplePaysOff is pays for a probe sample.
func samplePaysOff(n, m int) bool {
	return int64(m)*100 <= int64(n)*(100-probeSavingsPercent)
}

// Decompress decodes the stored form of a compressed chunk (what Compress
// returned with compressed == true), appending the plaintext to dst[:0]. It
// parses untrusted bytes: anything malformed is an error wrapping ErrCorrupt,
// and a plaintext larger than MaxChunkSize is refused with ErrTooLarge before
// any of it is decoded. It does not authenticate: frames carry no checksum,
// so a changed literal can decode to other bytes; callers open a seal first
// and check the plaintext against its ID. dst must not overlap src: form
// 0x03 is written into dst while src is still being read.
func Decompress(dst, src []byte) ([]byte, error) {
	return DecompressMax(dst, src, MaxChunkSize)
}

// DecompressMax is Decompress with a caller-chosen limit on the plaintext
// size, for blobs that are not chunks (e.g. tree metadata) but use the same
// stored form.
func DecompressMax(dst, src []byte, limit int) ([]byte, error) {
	if len(src) < 2 {
		return dst[:0], fmt.Errorf("decompress %d bytes: too short: %w", len(src), ErrCorrupt)
	}
	switch src[0] {
	case formatZstd:
		out, err := decodeFrame(dst[:0], src[1:], -1, limit)
		if err != nil {
			return dst[:0], fmt.Errorf("decompress: %w", err)
		}
		return out, nil
	case formatZstdShuffle4, formatShuffle4Huff:
		out, err := decodeShuffled(dst, src[1:], limit, src[0] == formatShuffle4Huff)
		if err != nil {
			return dst[:0], fmt.Errorf("decompress shuffled: %w", err)
		}
		return out, nil
	case formatWALRecords:
		out, err := decodeWALRecords(dst, src[1:], limit)
		if err != nil {
			return dst[:0], fmt.Errorf("decompress wal records: %w", err)
		}
		return out, nil
	}
	return dst[:0], fmt.Errorf("decompress: unknown format byte 0x%02x: %w", src[0], ErrCorrupt)
}

// decodeFrame decodes one zstd frame, appending to dst. want >= 0 is the
// exact size the frame must declare; otherwise any size up to limit. The
// size is checked in the frame header before decoding, and the decoder may
// not write past it (WithDecodeAllCapLimit with an exact capacity), so a
// lying header cannot make it allocate or produce more.
func decodeFrame(dst, frame []byte, want, limit int) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		return dst, fmt.Errorf("frame header: %v: %w", err, ErrCorrupt)
	}
	// Only single-segment frames with a content size (what encoder writes):
	// their window is the content size, so a hostile header cannot make the
	// decoder reserve a large window for a small output.
	if h.Skippable || !h.SingleSegment || !h.HasFCS || h.DictionaryID != 0 || h.FrameContentSize == 0 {
		return dst, fmt.Errorf("frame header: not a frame this package writes: %w", ErrCorrupt)
	}
	if h.FrameContentSize > uint64(limit) {
		return dst, fmt.Errorf("content size %d > limit %d: %w", h.FrameContentSize, limit, ErrTooLarge)
	}
	size := int(h.FrameContentSize)
	if want >= 0 && size != want {
		return dst, fmt.Errorf("frame content size %d, want %d: %w", size, want, ErrCorrupt)
	}
	start := len(dst)
	if cap(dst)-start < size {
		grown := make([]byte, start, start+size)
		copy(grown, dst)
		dst = grown
	}
	out, err := decoder().DecodeAll(frame, dst[:start:start+size])
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return dst[:start], fmt.Errorf("%v: %w", err, ErrTooLarge)
		}
		return dst[:start], fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	if len(out)-start != size {
		return dst[:start], fmt.Errorf("decoded %d bytes, header says %d: %w", len(out)-start, size, ErrCorrupt)
	}
	// out aliases dst (the capacity limit forbids reallocation); return it
	// with dst's full capacity so a caller appending more does not copy.
	if &out[start] == &dst[:start+1][start] {
		return dst[:len(out)], nil
	}
	return out, nil
}

// storedLength reads the plaintext length that starts the body of forms
// 0x02 to 0x04 and returns it with the rest of the body.
func storedLength(src []byte, limit int) (int, []byte, error) {
	total, n := binary.Uvarint(src)
	if n <= 0 {
		return 0, nil, fmt.Errorf("length: %w", ErrCorrupt)
	}
	if total > uint64(limit) {
		return 0, nil, fmt.Errorf("content size %d > limit %d: %w", total, limit, ErrTooLarge)
	}
	if total < minCompressSize {
		return 0, nil, fmt.Errorf("content size %d: %w", total, ErrCorrupt)
	}
	return int(total), src[n:], nil
}

// decodeShuffled decodes the body of formatZstdShuffle4, or with huff of
// formatShuffle4Huff (see compressShuffled): raw and Huffman planes a
// block at a time (decodeBlockPlanes, what the writer of 0x03 makes of
// chunks of a block a plane and more), anything else, and a damaged
// chunk's error, a plane at a time (decodeWholePlanes).
func decodeShuffled(dst, src []byte, limit int, huff bool) ([]byte, error) {
	size, src, err := storedLength(src, limit)
	if err != nil {
		return dst[:0], err
	}
	q := size / 4
	want := [4]int{q, q, q, size - 3*q}
	if huff {
		if secs, ok := blockPlanes(src, want); ok {
			out, err := decodeBlockPlanes(dst, size, secs)
			if err == nil {
				return out, nil
			}
			// Damaged: decode whole planes for the error they report,
			// the lowest plane's first fault (block by block, a later
			// plane's earlier block, or any plane's block before an
			// earlier plane's trailing bytes, would be met first).
		}
	}
	return decodeWholePlanes(dst, src, size, want, huff)
}

// decodeWholePlanes is decodeShuffled of any plane sections src (of sizes
// want, size bytes in all): the coded planes are decoded whole into a
// temporary buffer, the raw ones read where they lie in src, then all
// four interleaved into dst.
func decodeWholePlanes(dst, src []byte, size int, want [4]int, huff bool) ([]byte, error) {
	tmp := getBuf(size)
	defer putBuf(tmp)
	decoded := (*tmp)[:0]
	pl, err := decodePlanes(decoded, src, want, huff)
	if err != nil {
		return dst[:0], err
	}
	if cap(dst) < size {
		dst = make([]byte, size)
	}
	dst = dst[:size]
	unshufflePlanes(dst, pl)
	return dst, nil
}

// blockPlanes splits src, the four plane sections of sizes want that end
// the body of formatShuffle4Huff, into their kinds and bodies, when every
// section is a raw one of the right size or a planeHuff one and nothing
// follows the last: the form decodeBlockPlanes decodes block by block. It
// reports false for anything else (a planeZstd plane, a malformed
// header), which decodePlanes decodes or reports as before.
func blockPlanes(src []byte, want [4]int) (secs [4]planeSection, ok bool) {
	for k := range secs {
		if len(src) < 2 {
			return secs, false
		}
		kind := src[0]
		length, n := binary.Uvarint(src[1:])
		if n <= 0 || length > uint64(len(src)-1-n) {
			return secs, false
		}
		body := src[1+n : 1+n+int(length)]
		src = src[1+n+int(length):]
		if kind != planeRaw && kind != planeHuff || kind == planeRaw && len(body) != want[k] {
			return secs, false
		}
		secs[k] = planeSection{huff: kind == planeHuff, body: body, left: want[k]}
	}
	return secs, len(src) == 0
}

// planeSection is one plane of formatShuffle4Huff as decodeBlockPlanes
// reads it: a raw plane's bytes, or a planeHuff body decoded a block at a
// time into buf.
type planeSection struct {
	huff bool
	body []byte // raw: the plane's bytes not yet used; huff: the blocks not yet decoded
	left int    // huff: plaintext bytes in the blocks of body
	cur  []byte // huff: the decoded bytes of the current block not yet used
	buf  []byte // huff: where a block is decoded (cap huffBlockSize)
}

// next returns the plane's next bytes not yet used, at least one: a raw
// plane's rest, or the rest of the current Huffman block, decoding the
// next one when the current one is used up.
func (p *planeSection) next(s *huff0.Scratch) ([]byte, error) {
	if !p.huff {
		return p.body, nil
	}
	if len(p.cur) == 0 {
		if p.left == 0 {
			return nil, fmt.Errorf("huffman plane: used past its end: %w", ErrCorrupt)
		}
		n := min(p.left, huffBlockSize)
		p.left -= n
		var err error
		if p.cur, p.body, err = decodeHuffBlock(p.buf[:0], p.body, n, s); err != nil {
			return nil, err
		}
	}
	return p.cur, nil
}

// use marks the first n bytes next returned as used.
func (p *planeSection) use(n int) {
	if p.huff {
		p.cur = p.cur[n:]
	} else {
		p.body = p.body[n:]
	}
}

// decodeBlockPlanes decodes the plaintext of size bytes whose planes are
// secs (from blockPlanes) into dst[:0], a block of every plane at a time:
// the Huffman-coded planes are decoded into buffers of a block (128 KiB)
// that stay in the CPU's cache and are reused, then interleaved with the
// raw planes straight into dst. Decoding whole planes first (decodePlanes)
// needs a buffer of the chunk's size, up to 8 MiB, whose pages a fresh
// process (a mount) faults in and whose bytes are written to memory and
// read back: a third of the CPU a new mount spent on a cold segment
// (docs/benchmarks.md, issue 18, session 18).
func decodeBlockPlanes(dst []byte, size int, secs [4]planeSection) ([]byte, error) {
	need := 0 // a block of each Huffman plane: less for a small chunk's
	for _, p := range secs {
		if p.huff {
			need += min(p.left, huffBlockSize)
		}
	}
	if need > 0 {
		scratch := getBuf(need)
		defer putBuf(scratch)
		b := *scratch
		for k, p := range secs {
			if p.huff {
				n := min(p.left, huffBlockSize)
				secs[k].buf, b = b[:0:n], b[n:]
			}
		}
	}
	s := huffPool.Get().(*huff0.Scratch)
	defer huffPool.Put(s)
	if cap(dst) < size {
		dst = make([]byte, size)
	}
	dst = dst[:size]
	q := size / 4
	var cur [4][]byte
	for pos := 0; pos < q; {
		m := q - pos
		for k := range secs {
			b, err := secs[k].next(s)
			if err != nil {
				return dst[:0], fmt.Errorf("plane %d: %w", k, err)
			}
			cur[k] = b
			m = min(m, len(b))
		}
		unshufflePlanes(dst[4*pos:4*(pos+m)], [4][]byte{cur[0][:m], cur[1][:m], cur[2][:m], cur[3][:m]})
		for k := range secs {
			secs[k].use(m)
		}
		pos += m
	}
	// The last plane holds the size%4 bytes that end the plaintext.
	for t := dst[4*q:]; len(t) > 0; {
		b, err := secs[3].next(s)
		if err != nil {
			return dst[:0], fmt.Errorf("plane 3: %w", err)
		}
		n := copy(t, b)
		secs[3].use(n)
		t = t[n:]
	}
	for k, p := range secs {
		if p.huff && len(p.body) != 0 {
			return dst[:0], fmt.Errorf("plane %d: huffman plane: %d trailing bytes: %w", k, len(p.body), ErrCorrupt)
		}
	}
	return dst, nil
}

// decodePlanes reads the four plane sections of sizes size that end a
// stored form's body src, decoding coded ones into buf's free capacity
// (see decodeSection).
func decodePlanes(buf, src []byte, size [4]int, huff bool) (pl [4][]byte, err error) {
	for k := range 4 {
		if pl[k], buf, src, err = decodeSection(buf, src, size[k], size[k], huff); err != nil {
			return pl, fmt.Errorf("plane %d: %w", k, err)
		}
	}
	if len(src) != 0 {
		return pl, fmt.Errorf("%d trailing bytes: %w", len(src), ErrCorrupt)
	}
	return pl, nil
}
