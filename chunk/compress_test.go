package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestCompressRoundTrip(t *testing.T) {
	tests := []struct {
		name           string
		data           []byte
		level          Level
		wantCompressed bool
		wantFormat     byte
	}{
		{"floats 1MiB", genFloats(1<<20, 1), LevelDefault, true, formatShuffle4Huff},
		{"floats 16KiB page chunk", genFloats(16<<10, 2), LevelFastest, true, formatShuffle4Huff},
		{"floats odd length", genFloats(100_003, 3), LevelFastest, true, formatShuffle4Huff},
		{"text", genText(300_000, 4), LevelFastest, true, formatZstd},
		{"text balanced", genText(300_000, 4), LevelBalanced, true, formatZstd},
		{"text better", genText(70_000, 5), LevelBetter, true, formatZstd},
		// WAL records carry float32 payloads at every byte phase: plain zstd
		// saves about 10 %, over minSavingsPercent (5 %), and more than a
		// shuffle would (the Engram WAL was stored raw, which made the
		// repository 5 % bigger than restic's on the wal-heavy profile).
		{"wal compressed plain", genWAL(1<<20, 6), LevelFastest, true, formatZstd},
		// Looks like float32 (one plane of 6 bits, three of 8); shuffling
		// saves ~6 %, over minSavingsPercent (TestShuffledProbe).
		{"wide-exponent floats", genWideFloats(1<<20, 11), LevelFastest, true, formatShuffle4Huff},
		{"random stays raw", dataKinds[3].gen(1<<20, 7), LevelFastest, false, 0},
		{"small random stays raw", dataKinds[3].gen(5000, 7), LevelFastest, false, 0},
		{"short text", bytes.Repeat([]byte("abcabd"), 50), LevelFastest, true, formatZstd},
		{"8 MiB text", genText(MaxChunkSize, 9), LevelFastest, true, formatZstd},
		{"8 MiB floats", genFloats(MaxChunkSize, 9), LevelFastest, true, formatShuffle4Huff},
		{"tiny stays raw", []byte("hello, hello, hello, hello"), LevelFastest, false, 0},
		{"zeros", make([]byte, 1<<20), LevelFastest, true, formatZstd},
		{"level none", genText(100_000, 8), LevelNone, false, 0},
	}
	for _, tt := range tests {
		for _, huff := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s huff %v", tt.name, huff), func(t *testing.T) {
				roundTrip(t, tt.data, tt.level, huff, tt.wantCompressed, tt.wantFormat)
			})
		}
	}
}

// roundTrip compresses data as a pipeline with UseHuffPlanes(huff) would
// (Compress is the same without huff: repositories before format 3 get form
// 0x02 where later ones get 0x03) and checks the stored form and its
// decoding.
func roundTrip(t *testing.T, data []byte, level Level, huff, wantCompressed bool, wantFormat byte) {
	t.Helper()
	if !huff && wantFormat == formatShuffle4Huff {
		wantFormat = formatZstdShuffle4
	}
	stored, compressed := compress(nil, data, level, shuffleAuto, true, huff, nil)
	if !huff {
		if pub, pubOK := Compress(nil, data, level); pubOK != compressed || !bytes.Equal(pub, stored) {
			t.Fatal("Compress differs from compress without huff")
		}
	}
	if compressed != wantCompressed {
		t.Fatalf("compressed = %v, want %v (%d -> %d bytes)", compressed, wantCompressed, len(data), len(stored))
	}
	if !compressed {
		if !bytes.Equal(stored, data) {
			t.Fatal("uncompressed stored form differs from input")
		}
		return
	}
	if stored[0] != wantFormat {
		t.Fatalf("format byte 0x%02x, want 0x%02x", stored[0], wantFormat)
	}
	if !pays(len(data), len(stored)) {
		t.Fatalf("compressed %d -> %d does not save %d%%", len(data), len(stored), minSavingsPercent)
	}
	got, err := Decompress(nil, stored)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("round trip differs")
	}
	// Into a reused, too-small and a big-enough buffer.
	for _, dst := range [][]byte{make([]byte, 10), make([]byte, 0, len(data)+5)} {
		got, err := Decompress(dst, stored)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip into cap %d: err %v, equal %v", cap(dst), err, bytes.Equal(got, data))
		}
	}
}

func TestShuffleRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 8, 1023, 4096, 100_001} {
		src := genText(n, uint64(n))
		sh := make([]byte, n)
		back := make([]byte, n)
		shuffle4(sh, src)
		unshuffle4(back, sh)
		if !bytes.Equal(back, src) {
			t.Fatalf("n=%d: unshuffle(shuffle(x)) != x", n)
		}
	}
	got := make([]byte, 9)
	shuffle4(got, []byte{0, 1, 2, 3, 10, 11, 12, 13, 99})
	if want := []byte{0, 10, 1, 11, 2, 12, 3, 13, 99}; !bytes.Equal(got, want) {
		t.Fatalf("shuffle4 = %v, want %v", got, want)
	}
}

func TestLooksLikeFloat32(t *testing.T) {
	for _, k := range dataKinds {
		for _, shift := range []int{0, 1, 2, 3} {
			e, ok := planeEntropy(k.gen(1<<20, 9)[shift:])
			if got, want := ok && looksLikeFloat32(e), k.name == "floats"; got != want {
				t.Errorf("%s shifted %d: looksLikeFloat32 = %v, want %v (entropies %.2f)", k.name, shift, got, want, e)
			}
		}
	}
}

// TestCompressWritesNoChecksum: frames carry their content size and no
// xxhash64 checksum (four bytes a blob; every stored form is sealed and
// its plaintext checked against its ID), and frames written with one, as
// before, still decode.
func TestCompressWritesNoChecksum(t *testing.T) {
	src := genText(100_000, 1)
	c, ok := Compress(nil, src, LevelFastest)
	if !ok || c[0] != formatZstd {
		t.Fatal("text did not compress")
	}
	var h zstd.Header
	if err := h.Decode(c[1:]); err != nil {
		t.Fatal(err)
	}
	if h.HasCheckSum || !h.HasFCS || h.FrameContentSize != uint64(len(src)) {
		t.Fatalf("frame header: checksum %v, content size %v %d", h.HasCheckSum, h.HasFCS, h.FrameContentSize)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true), zstd.WithSingleSegment(true))
	if err != nil {
		t.Fatal(err)
	}
	old := enc.EncodeAll(src, []byte{formatZstd})
	out, err := Decompress(nil, old)
	if err != nil || !bytes.Equal(out, src) {
		t.Fatalf("a frame with a checksum: %v", err)
	}
}

func TestDecompressRejects(t *testing.T) {
	good, ok := Compress(nil, genText(100_000, 1), LevelFastest)
	if !ok {
		t.Fatal("text did not compress")
	}
	goodShuf, ok := compress(nil, genFloats(100_000, 1), LevelFastest, shuffleAuto, true, true, nil)
	if !ok || goodShuf[0] != formatShuffle4Huff {
		t.Fatal("floats did not compress shuffled")
	}
	big, ok := Compress(nil, make([]byte, MaxChunkSize+1), LevelFastest)
	if !ok {
		t.Fatal("zeros did not compress")
	}
	bigShuf := append([]byte{formatZstdShuffle4}, binary.AppendUvarint(nil, MaxChunkSize+1)...)
	// A flipped byte in the frame's header or block structure is refused;
	// one in a literal may decode to other bytes (frames carry no checksum:
	// the seal and the blob's ID catch it, TestCompressWritesNoChecksum).
	flipped := bytes.Clone(good)
	flipped[2] ^= 0x40 // the zstd magic
	tests := []struct {
		name string
		src  []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"one byte", []byte{formatZstd}, ErrCorrupt},
		{"unknown format", append([]byte{0x7f}, good[1:]...), ErrCorrupt},
		{"not zstd", []byte{formatZstd, 1, 2, 3, 4, 5, 6, 7, 8}, ErrCorrupt},
		{"truncated", good[:len(good)/2], ErrCorrupt},
		{"flipped byte", flipped, ErrCorrupt},
		{"trailing garbage", append(bytes.Clone(good), 1, 2, 3), ErrCorrupt},
		{"too large", big, ErrTooLarge},
		{"shuffled truncated", goodShuf[:len(goodShuf)-10], ErrCorrupt},
		{"shuffled trailing", append(bytes.Clone(goodShuf), 0), ErrCorrupt},
		{"shuffled too large", bigShuf, ErrTooLarge},
		{"shuffled no planes", []byte{formatZstdShuffle4, 100}, ErrCorrupt},
		{"huffman plane in format 0x02", append([]byte{formatZstdShuffle4}, goodShuf[1:]...), ErrCorrupt},
		{"huffman block mode 3", huffSection(64, 3), ErrCorrupt},
		{"huffman raw block truncated", huffSection(64, huffBlockRaw, 1, 2, 3), ErrCorrupt},
		{"huffman rle block truncated", huffSection(64, huffBlockRLE), ErrCorrupt},
		{"huffman block bad length", huffSection(64, huffBlockHuff, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2), ErrCorrupt},
		{"huffman block garbage", huffSection(64, append([]byte{huffBlockHuff, 20}, bytes.Repeat([]byte{0x55}, 20)...)...), ErrCorrupt},
		{"huffman block trailing", huffSection(64, append(append([]byte{huffBlockRaw}, make([]byte, 64)...), 9)...), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Decompress(nil, tt.src)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if len(out) != 0 {
				t.Fatalf("returned %d bytes with the error", len(out))
			}
		})
	}
	// A caller-chosen limit applies to both formats.
	if _, err := DecompressMax(nil, good, 99_999); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("DecompressMax below size: %v", err)
	}
	if _, err := DecompressMax(nil, goodShuf, 99_999); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("DecompressMax shuffled below size: %v", err)
	}
}

// huffSection is a formatShuffle4Huff stored form of 4*n bytes whose first
// plane is a planeHuff section with body and whose other planes are raw
// zeros.
func huffSection(n int, body ...byte) []byte {
	b := binary.AppendUvarint([]byte{formatShuffle4Huff}, uint64(4*n))
	b = append(b, planeHuff)
	b = binary.AppendUvarint(b, uint64(len(body)))
	b = append(b, body...)
	for range 3 {
		b = appendSection(b, planeRaw, make([]byte, n))
	}
	return b
}

// FuzzDecompress feeds arbitrary bytes to Decompress: it must never panic,
// never return more than MaxChunkSize, and whatever it accepts must be
// exactly what re-compressing and decoding gives back.
func FuzzDecompress(f *testing.F) {
	// Small seeds: Go's mutator slows to a crawl on inputs of tens of KiB.
	for _, seed := range [][]byte{genText(3000, 3), genFloats(4000, 3), genWAL(5000, 3), bytes.Repeat([]byte{7}, 5000)} {
		for _, mode := range []shuffleMode{shuffleNever, shuffleAlways} {
			if s, ok := compress(nil, seed, LevelFastest, mode, false, true, nil); ok {
				f.Add(s)
			}
		}
	}
	// The stored forms of every plane and block kind: format 0x02 (zstd
	// planes), 0x03 with Huffman, RLE and raw blocks.
	low := genFloats(4000, 4)
	for i := 0; i < len(low); i += 4 {
		low[i] = 0     // an RLE plane
		low[i+1] &= 15 // a Huffman plane
	}
	f.Add(compressShuffledZstd(nil, low, LevelFastest, [4]float64{}))
	f.Add(compressShuffledRef(nil, low, LevelFastest, [4]float64{}))
	f.Add([]byte{formatZstd})
	f.Add([]byte{formatZstdShuffle4, 0x80, 0x01, 0, 32})
	// Form 0x04 (FuzzWALRecords fuzzes its body alone).
	if s, ok := compressWALChunk(genEngramWAL(6000, 384, "fuzz")[50:5050]); ok {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := Decompress(nil, src)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrTooLarge", err)
			}
			return
		}
		if len(out) > MaxChunkSize || len(out) == 0 {
			t.Fatalf("decoded %d bytes", len(out))
		}
	})
}

// genWideFloats returns n bytes of little-endian words whose low three bytes
// are random and whose top byte takes 64 values: float32-shaped, but with
// too little redundancy for compression to pay.
func genWideFloats(n int, seed uint64) []byte {
	b := dataKinds[3].gen(n, seed)
	for i := 3; i < len(b); i += 4 {
		b[i] &= 0x3f
	}
	return b
}

// TestShuffledProbe: a chunk that looks like float32 but would not save
// minSavingsPercent shuffled is rejected by the 16 KiB probe, so Compress
// never shuffles and compresses all of it; real float data passes the probe.
func TestShuffledProbe(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		pays bool
	}{
		{"wide-exponent floats", genWideFloats(1<<20, 11), true},
		{"embeddings", genFloats(1<<20, 1), true},
	} {
		ent, ok := planeEntropy(tc.data)
		if !ok || !looksLikeFloat32(ent) {
			t.Fatalf("%s: entropies %.2f do not look like float32", tc.name, ent)
		}
		if got := shuffledSamplePays(tc.data, LevelFastest, ent, true); got != tc.pays {
			t.Errorf("%s: shuffledSamplePays = %v, want %v (entropies %.2f)", tc.name, got, tc.pays, ent)
		}
	}
}
