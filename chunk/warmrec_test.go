package chunk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// genWarmPages returns pages 4 KiB pages of an Engram warm page file
// (docs/engram-format.md; cmd/engram-sim/warm.go writes the same layout)
// with dim-float embeddings (truncated to fit the page, as Engram does),
// one page in freeEvery free (all zeros; 0: none), fixed by the BLAKE3
// specification like genEngramWAL. emb, when not nil, makes embedding
// word i of every record: a shape the scan did not expect.
func genWarmPages(pages, dim, freeEvery int, seed string, emb func(r func(int) []byte, i int) []byte) []byte {
	rnd, u := testRandom("memento warmrec test input: " + seed)
	words := []string{"the", "of", "memory", "agent", "note", "recall", "vector", "space", "user", "said", "when", "embedding"}
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	out := make([]byte, pages*warmPageSize)
	for i := range pages {
		if freeEvery > 0 && u(freeEvery) == 0 {
			continue
		}
		page := out[i*warmPageSize : (i+1)*warmPageSize]
		id := fmt.Appendf(nil, "mem-%016x", u(1<<30))
		var text []byte
		for len(text) < 40+u(160) {
			text = append(append(text, words[u(len(words))]...), ' ')
		}
		n := min(dim, (warmPageSize-warmPageHeader-walRecordFixed-len(id)-len(text))/4)
		rec := binary.LittleEndian.AppendUint16(nil, uint16(len(id)))
		rec = append(rec, id...)
		rec = append(rec, rnd(4)...) // confidence
		rec = binary.LittleEndian.AppendUint16(rec, uint16(n))
		for j := range n {
			if emb != nil {
				rec = append(rec, emb(rnd, j)...)
				continue
			}
			m, e := rnd(3), rnd(1)[0]
			rec = append(rec, m[0], m[1], m[2]&0x7f|e<<7, 0x3c+e>>1&7|e&0x80)
		}
		rec = binary.LittleEndian.AppendUint32(rec, uint32(len(text)))
		rec = append(rec, text...)
		copy(page, warmMagic)
		binary.LittleEndian.PutUint32(page[4:], uint32(i))
		binary.LittleEndian.PutUint64(page[8:], uint64(1+u(1e6)))
		binary.LittleEndian.PutUint16(page[16:], warmPageUsed)
		binary.LittleEndian.PutUint16(page[18:], uint16(len(rec)))
		copy(page[warmPageHeader:], rec)
		c := crc32.Update(0, castagnoli, page[:20])
		binary.LittleEndian.PutUint32(page[20:], crc32.Update(c, castagnoli, page[24:]))
	}
	return out
}

// compressWarmChunk stores src as a backup of a format-4 repository stores
// a chunk of the warm page file; compressWarmChunk3 as one of format 3.
func compressWarmChunk(src []byte) ([]byte, bool) {
	return compressKind(nil, src, LevelFastest, kindWarm, formsHuff|formsWALRecords, nil)
}

func compressWarmChunk3(src []byte) ([]byte, bool) {
	return compressKind(nil, src, LevelFastest, kindWarm, formsHuff, nil)
}

// realWarmPages is 16 pages (page 5 free) of the warm page file of
// `engram-sim generate --size 8M --seed 3 --dim 384 --profile default`,
// space-a.
func realWarmPages(t *testing.T) []byte {
	b := mustReadFile(t, filepath.Join("testdata", "warm-pages-384.bin"))
	if len(b) != 16*warmPageSize || !bytes.Equal(b[5*warmPageSize:6*warmPageSize], make([]byte, warmPageSize)) {
		t.Fatalf("testdata/warm-pages-384.bin: %d bytes, page 5 not free", len(b))
	}
	return b
}

// TestWarmRecordsRoundTrip: chunks of warm page files (engram-sim's real
// pages, and generated ones of every embedding size, with free pages), on
// the page grid as backups cut them and cut at arbitrary offsets (pages
// split by the chunk's ends, as parameter sets 1 and 2 cut them), are
// stored in form 0x04, smaller than without it, and decode to exactly
// their bytes.
func TestWarmRecordsRoundTrip(t *testing.T) {
	inputs := map[string][]byte{"engram-sim 384": realWarmPages(t)}
	for _, dim := range []int{16, 64, 384, 768, 1000, 1536} {
		inputs[fmt.Sprint("dim ", dim)] = genWarmPages(24, dim, 5, fmt.Sprint("roundtrip ", dim), nil)
	}
	for name, in := range inputs {
		for _, cut := range []struct{ off, n int }{{0, 32 << 10}, {32 << 10, 32 << 10}, {4096, 4096}, {1000, 30000}, {4095, 12289}, {24 + 50, 9000}} {
			src := in[cut.off : cut.off+cut.n]
			_, words, offGrid := warmRuns(nil, src)
			if words < warmMinWords {
				continue // only free pages, or too few floats
			}
			stored, ok := compressWarmChunk(src)
			if !ok || stored[0] != formatWALRecords && !offGrid {
				t.Fatalf("%s, %d bytes at %d: stored in form %#x (compressed %v), want 0x04", name, cut.n, cut.off, stored[0], ok)
			}
			if before, _ := compressWarmChunk3(src); len(stored) >= len(before) && !(offGrid && len(stored) == len(before)) {
				t.Errorf("%s, %d bytes at %d: form 0x04 %d bytes, without it %d", name, cut.n, cut.off, len(stored), len(before))
			}
			back, err := Decompress(nil, stored)
			if err != nil || !bytes.Equal(back, src) {
				t.Fatalf("%s, %d bytes at %d: round trip: %v", name, cut.n, cut.off, err)
			}
		}
	}
}

// TestWarmRecordsRuns: the scan finds one run per used page, exactly at
// its embedding, skips free pages and pages that do not parse, and keeps
// finding pages after garbage.
func TestWarmRecordsRuns(t *testing.T) {
	in := realWarmPages(t)
	runs, words, offGrid := warmRuns(nil, in)
	if len(runs) != 15 || words != 15*384 || offGrid {
		t.Fatalf("%d runs of %d words (off the grid %v), want 15 of 384 each", len(runs), words, offGrid)
	}
	pos := 0
	for i, r := range runs {
		pos += r.gap
		page := pos / warmPageSize
		if page >= 5 {
			page-- // page 5 is free
		}
		idLen := int(binary.LittleEndian.Uint16(in[pos/warmPageSize*warmPageSize+warmPageHeader:]))
		if want := pos/warmPageSize*warmPageSize + warmPageHeader + 2 + idLen + 6; pos != want || r.words != 384 || page != i {
			t.Fatalf("run %d at %d (%d words), want %d (384)", i, pos, r.words, want)
		}
		pos += 4 * r.words
	}
	// A page whose header lies (kind, payload length, id length, dim too
	// large) gives no run; the pages after it still do.
	bad := bytes.Clone(in[:4*warmPageSize])
	binary.LittleEndian.PutUint16(bad[16:], 2)                            // page 0: kind 2
	binary.LittleEndian.PutUint16(bad[warmPageSize+18:], 5000)            // page 1: payload past the page
	binary.LittleEndian.PutUint16(bad[2*warmPageSize+warmPageHeader:], 0) // page 2: empty id
	copy(bad[3*warmPageSize:], "garbage!")                                // page 3: no magic
	copy(bad[3*warmPageSize+100:], warmMagic)                             // a magic off the grid, nothing after it
	bad = append(bad, in[6*warmPageSize:8*warmPageSize]...)               // two good pages
	if runs, words, _ := warmRuns(nil, bad); len(runs) != 2 || words != 2*384 {
		t.Fatalf("damaged pages: %d runs of %d words, want 2 of 384", len(runs), words)
	}
	if stored, ok := compressWarmChunk(bad); !ok || stored[0] != formatWALRecords {
		t.Fatalf("damaged pages: not stored in form 0x04")
	} else if back, err := Decompress(nil, stored); err != nil || !bytes.Equal(back, bad) {
		t.Fatalf("damaged pages: round trip: %v", err)
	}
}

// TestWarmRecordsNeverLarger: for warm chunks of shapes the scan was not
// made for (the same record on several pages, embeddings of zeros or of
// few values, garbage behind a page magic, pages without embeddings, only
// free pages), the chosen form stores at most 0.2 % (and 16 bytes) more
// than the form without 0x04, and decodes to the chunk.
func TestWarmRecordsNeverLarger(t *testing.T) {
	// Each embedding starts with two random words, so that these shapes
	// reach the planes instead of the repeated-run check.
	zero := func(r func(int) []byte, i int) []byte {
		if i < 2 {
			return r(4)
		}
		return make([]byte, 4)
	}
	few := func(r func(int) []byte, i int) []byte {
		if i < 2 {
			return r(4)
		}
		return []byte{0, 0, 0x80 * (r(1)[0] & 1), 0x3f}
	}
	sparse := func(r func(int) []byte, i int) []byte {
		if b := r(4); i < 2 || b[0] < 16 {
			return b
		}
		return make([]byte, 4)
	}
	dup := genWarmPages(8, 384, 0, "dup", nil)
	for i := 1; i < 8; i += 2 { // every other page repeats the one before it, page number and CRC aside
		copy(dup[i*warmPageSize+16:(i+1)*warmPageSize], dup[(i-1)*warmPageSize+16:i*warmPageSize])
	}
	garbage := genWarmPages(8, 768, 0, "garbage", nil)
	rnd, _ := testRandom("garbage")
	for i := range 8 {
		copy(garbage[i*warmPageSize+4:(i+1)*warmPageSize], rnd(warmPageSize-4))
	}
	halfGarbage := genWarmPages(8, 768, 0, "half garbage", nil)
	for i := 1; i < 8; i += 2 {
		copy(halfGarbage[i*warmPageSize+warmPageHeader+40:(i+1)*warmPageSize], rnd(warmPageSize-warmPageHeader-40))
	}
	for name, src := range map[string][]byte{
		"duplicate pages":   dup,
		"zero embeddings":   genWarmPages(8, 768, 0, "zero", zero),
		"few values":        genWarmPages(8, 768, 0, "few", few),
		"sparse embeddings": genWarmPages(8, 768, 0, "sparse", sparse),
		"garbage pages":     garbage,
		"half garbage":      halfGarbage,
		"duplicate, cut":    dup[1000 : 1000+6*warmPageSize],
		"no embeddings":     genWarmPages(8, 0, 0, "text", nil),
		"free pages":        make([]byte, 8*warmPageSize),
		"real, free first":  append(make([]byte, 7*warmPageSize), realWarmPages(t)[:warmPageSize]...),
	} {
		stored, ok := compressWarmChunk(src)
		before, okBefore := compressWarmChunk3(src)
		t.Logf("%s: %d bytes, form %#x (%v); without 0x04: %d, form %#x", name, len(stored), stored[0], ok, len(before), before[0])
		if len(stored) > len(before)+len(before)/500+16 {
			t.Errorf("%s: stored %d bytes (form %#x), without form 0x04 %d", name, len(stored), stored[0], len(before))
		}
		if ok != okBefore && !ok {
			t.Errorf("%s: raw, compressed without form 0x04", name)
		}
		if ok {
			if back, err := Decompress(nil, stored); err != nil || !bytes.Equal(back, src) {
				t.Fatalf("%s: round trip: %v", name, err)
			}
		}
	}
}

// TestWarmRecordsNeedsForm: a warm chunk gets form 0x04 only with
// formsWALRecords (repositories of format 4 and later), and only as a
// warm or WAL chunk.
func TestWarmRecordsNeedsForm(t *testing.T) {
	src := realWarmPages(t)[:32<<10]
	for _, f := range []forms{0, formsHuff} {
		if stored, ok := compressKind(nil, src, LevelFastest, kindWarm, f, nil); ok && stored[0] == formatWALRecords {
			t.Errorf("forms %b: stored in form 0x04", f)
		}
	}
	for _, k := range []fileKind{kindDefault, kindCold} {
		if stored, ok := compressKind(nil, src, LevelFastest, k, formsHuff|formsWALRecords, nil); ok && stored[0] == formatWALRecords {
			t.Errorf("kind %d: stored in form 0x04", k)
		}
	}
	if stored, ok := CompressFile(nil, src, "warm/warm_tier.dat", LevelFastest); ok && stored[0] == formatWALRecords {
		t.Error("CompressFile (no repository format) stored form 0x04")
	}
}

// TestPipelineWarmRecords: a pipeline stores warm chunks in form 0x04 only
// after UseWALRecords, the same bytes eagerly (SplitFile), lazily
// (SplitFileLazy and Chunk.Compress, as a backup's delta candidates) and
// through CompressFile (a delta's pages); every chunk restores.
func TestPipelineWarmRecords(t *testing.T) {
	warm := bytes.Repeat(realWarmPages(t), 4) // 256 KiB: 8 chunks
	const rel = "spaces/s/warm/warm_tier.dat"
	p := NewPipeline(2, LevelDefault)
	defer p.Close()
	p.UseHuffPlanes(true)
	for _, on := range []bool{false, true, false} {
		p.UseWALRecords(on)
		split := func(lazy bool) *memStore {
			st := newMemStore()
			var lz func(int, ID) bool
			store := st.store
			if lazy {
				lz = func(int, ID) bool { return true }
				store = func(c *Chunk) error {
					if !c.Lazy() || c.Stored != nil {
						return fmt.Errorf("chunk %d: not lazy", c.Index)
					}
					c.Compress()
					return st.store(c)
				}
			}
			ids, _, _, err := p.SplitFileLazy(context.Background(), bytes.NewReader(warm), rel, testPol, ParamsFor(rel), testKey, nil, lz, store)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(st.restore(t, ids), warm) {
				t.Fatalf("on %v lazy %v: does not restore", on, lazy)
			}
			for _, id := range ids {
				if is04 := st.comp[id] && st.stored[id][0] == formatWALRecords; is04 != on {
					t.Fatalf("on %v lazy %v: stored form %#x (compressed %v)", on, lazy, st.stored[id][0], st.comp[id])
				}
			}
			return st
		}
		eager, lazy := split(false), split(true)
		for id, s := range eager.stored {
			if !bytes.Equal(lazy.stored[id], s) {
				t.Fatalf("on %v: chunk %s stored differently by Chunk.Compress", on, id.Short())
			}
		}
		pages := append(bytes.Clone(warm[:warmPageSize]), warm[3*warmPageSize:4*warmPageSize]...)
		stored, ok := p.CompressFile(nil, pages, rel)
		if is04 := ok && stored[0] == formatWALRecords; is04 != on {
			t.Fatalf("on %v: a delta's pages stored in form %#x", on, stored[0])
		}
		if back, err := Decompress(nil, stored); !ok || err != nil || !bytes.Equal(back, pages) {
			t.Fatalf("on %v: a delta's pages: round trip: %v", on, err)
		}
	}
}

// warmrecGoldenInput is the input of testdata/warmrec-0x04.bin and
// warmrec-0x04-s13.bin: 32 KiB of engram-sim's warm pages, the free page
// among them.
func warmrecGoldenInput(t *testing.T) []byte {
	return realWarmPages(t)[2*warmPageSize : 10*warmPageSize]
}

// TestWarmRecordsGolden pins the warm writer's form 0x04: the golden file
// decodes to its input and the writer produces it byte for byte.
// Regenerate only for a deliberate change of the writer (go test -run
// WarmRecordsGolden -update); old files must keep decoding.
func TestWarmRecordsGolden(t *testing.T) {
	in := warmrecGoldenInput(t)
	runs, kinds := checkRecordsGolden(t, "warmrec-0x04.bin", in, func() []byte { s, _ := compressWarmChunk(in); return s })
	// 7 runs (one page is free), a raw layout, a zstd rest, three raw
	// mantissa planes and a Huffman exponent plane.
	if want := []byte{planeRaw, planeZstd, planeRaw, planeRaw, planeRaw, planeHuff}; runs != 7 || !bytes.Equal(kinds, want) {
		t.Errorf("%d runs, section kinds %v; want 7, %v", runs, kinds, want)
	}
	// The rest's frame stores its literals raw (rawLitEncoder).
	if got := restLiteralTypes(t, mustReadFile(t, filepath.Join("testdata", "warmrec-0x04.bin"))); len(got) == 0 || bytes.ContainsFunc(got, func(r rune) bool { return r != zstdLitRaw }) {
		t.Errorf("rest frame literal block types %v, want raw (%d) only", got, zstdLitRaw)
	}
}

// TestWarmRecordsGoldenS13: what session 13's warm writer stored (the
// rest's literals Huffman-coded) still decodes to its input.
func TestWarmRecordsGoldenS13(t *testing.T) {
	in := warmrecGoldenInput(t)
	stored := mustReadFile(t, filepath.Join("testdata", "warmrec-0x04-s13.bin"))
	if out, err := Decompress(nil, stored); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("decompress: %v (%d bytes, equal %v)", err, len(out), bytes.Equal(out, in))
	}
	if got := restLiteralTypes(t, stored); !bytes.Contains(got, []byte{zstdLitCompressed}) {
		t.Errorf("rest frame literal block types %v, want a Huffman-coded one (%d)", got, zstdLitCompressed)
	}
}

// zstd literals section types (RFC 8878, 3.1.1.3.1.1).
const (
	zstdLitRaw        = 0
	zstdLitCompressed = 2
)

// restLiteralTypes returns the literals section type of each compressed
// block of the zstd frame in the rest section of a form 0x04 chunk.
func restLiteralTypes(t *testing.T, stored []byte) []byte {
	t.Helper()
	b := stored[1:]
	for range 2 { // the length, the run count
		_, n := binary.Uvarint(b)
		b = b[n:]
	}
	for i := range 2 { // the layout, then the rest
		n, k := binary.Uvarint(b[1:])
		if i == 0 {
			b = b[1+k+int(n):]
			continue
		}
		if b[0] != planeZstd {
			t.Fatalf("rest section of kind %d, want a zstd frame", b[0])
		}
		b = b[1+k : 1+k+int(n)]
	}
	fhd := b[4]
	fcs := [4]int{1, 2, 4, 8}[fhd>>6]
	if fhd&0x20 == 0 || fhd&3 != 0 {
		t.Fatalf("frame header %#x: not single-segment without dictionary", fhd)
	}
	b = b[5+fcs:]
	var types []byte
	for len(b) >= 3 {
		h := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		last, typ, size := h&1 == 1, h>>1&3, h>>3
		if typ == 1 { // RLE: one byte
			size = 1
		}
		if typ == 2 {
			types = append(types, b[3]&3)
		}
		b = b[3+size:]
		if last {
			break
		}
	}
	return types
}

// TestWarmRecordsRawLitsFallBack: a warm chunk whose rest holds more than
// padding and headers (5 pages that parse and 3 of skewed bytes that do
// not) keeps its rest's literals Huffman-coded where that is smaller: no
// larger than session 13's writer stored it (raw literals there: +17 %),
// and it still decodes to itself.
func TestWarmRecordsRawLitsFallBack(t *testing.T) {
	in := bytes.Clone(realWarmPages(t)[:5*warmPageSize])
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3 * warmPageSize {
		in = append(in, byte(rng.IntN(64)))
	}
	runs, words, offGrid := warmRuns(nil, in)
	ent := runEntropy(in, runs, warmSampleWords, warmMinSample)
	if len(runs) != 5 || offGrid || ent[0] < randomPlaneEntropy || ent[1] < randomPlaneEntropy {
		t.Fatalf("%d runs, off the grid %v, planes' entropy %v: not a chunk whose rest gets raw literals", len(runs), offGrid, ent)
	}
	huff, ok := compressRuns(nil, in, runs, words, ent, LevelFastest, false, nil)
	if !ok {
		t.Fatal("form 0x04 with Huffman-coded rest literals does not pay")
	}
	stored, ok := compressWarmChunk(in)
	if !ok || stored[0] != formatWALRecords || len(stored) != len(huff) {
		t.Fatalf("stored in form %#x, %d bytes (ok %v); want 0x04 in %d bytes, as with Huffman-coded rest literals", stored[0], len(stored), ok, len(huff))
	}
	if got := restLiteralTypes(t, stored); !bytes.Contains(got, []byte{zstdLitCompressed}) {
		t.Errorf("rest frame literal block types %v, want a Huffman-coded one (%d)", got, zstdLitCompressed)
	}
	if out, err := Decompress(nil, stored); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("decompress: %v (equal %v)", err, bytes.Equal(out, in))
	}
}
