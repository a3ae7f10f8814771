package chunk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// genEngramWAL returns at least n bytes of Engram WAL v1 entries
// (docs/engram-format.md) with dim-float embeddings, fixed by the BLAKE3
// specification (no float arithmetic: the same bytes on every platform):
// stores and updates with ids of 5-40 bytes and 20-400 bytes of text, one
// delete in 8 and a marker in 32. The floats are normal-like: random sign
// and mantissa, the exponent within 16 values around 2^-3.
func genEngramWAL(n, dim int, seed string) []byte {
	rnd, u := testRandom("memento walrec test input: " + seed)
	words := strings.Fields("the of memory agent note recall vector space tenant user said when where which after before embedding")
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	var out []byte
	seq, ts := uint64(1), uint64(1_780_000_000_000_000_000)
	for len(out) < n {
		var payload []byte
		typ := uint16(1 + u(2))
		switch x := u(32); {
		case x == 0:
			typ = 4
		case x < 5:
			typ = 3
		}
		id := fmt.Appendf(nil, "mem-%0*d", 1+u(36), u(1e9))
		if typ != 4 {
			payload = binary.LittleEndian.AppendUint16(payload, uint16(len(id)))
			payload = append(payload, id...)
		}
		if typ == 1 || typ == 2 {
			payload = append(payload, rnd(4)...) // confidence
			payload = binary.LittleEndian.AppendUint16(payload, uint16(dim))
			m, e := rnd(3*dim), rnd(dim)
			for i := range dim {
				payload = append(payload, m[3*i], m[3*i+1], m[3*i+2]&0x7f|e[i]<<7, 0x3c+e[i]>>1&7|e[i]&0x80)
			}
			var text []byte
			for len(text) < 20+u(380) {
				text = append(append(text, words[u(len(words))]...), ' ')
			}
			payload = binary.LittleEndian.AppendUint32(payload, uint32(len(text)))
			payload = append(payload, text...)
		}
		var h [32]byte
		copy(h[:], walMagic)
		binary.LittleEndian.PutUint32(h[4:], uint32(len(payload)))
		binary.LittleEndian.PutUint64(h[8:], seq)
		binary.LittleEndian.PutUint64(h[16:], ts)
		binary.LittleEndian.PutUint16(h[24:], typ)
		c := crc32.Update(crc32.Checksum(h[4:28], castagnoli), castagnoli, payload)
		binary.LittleEndian.PutUint32(h[28:], c)
		out = append(append(out, h[:]...), payload...)
		seq++
		ts += uint64(u(5_000_000))
	}
	return out
}

// testRandom returns a stream of bytes fixed by seed and the BLAKE3
// specification (rnd(k): the next k bytes) and u(m), the next number below
// m drawn from it.
func testRandom(seed string) (rnd func(k int) []byte, u func(m int) int) {
	d := blake3.New()
	d.WriteString(seed)
	r := d.Digest()
	rnd = func(k int) []byte {
		b := make([]byte, k)
		_, _ = io.ReadFull(r, b)
		return b
	}
	return rnd, func(m int) int { return int(binary.LittleEndian.Uint32(rnd(4)) % uint32(m)) }
}

// compressWALChunk stores src as a backup of a format-4 repository stores a
// WAL chunk.
func compressWALChunk(src []byte) ([]byte, bool) {
	return compressKind(nil, src, LevelFastest, kindWAL, formsHuff|formsWALRecords, nil)
}

// TestWALRecordsRoundTrip: WAL chunks of every embedding size, cut at
// arbitrary offsets (mid-record at both ends, mid-header, mid-embedding),
// are stored in form 0x04, smaller than form 0x01, and decode to exactly
// their bytes.
func TestWALRecordsRoundTrip(t *testing.T) {
	for _, dim := range []int{384, 768, 1024, 1536} {
		wal := genEngramWAL(3<<20, dim, fmt.Sprint("dim ", dim))
		for _, cut := range []struct{ off, n int }{
			{0, 1 << 20}, {1, 1 << 20}, {17, 1<<20 + 3}, {1000, 1<<20 - 1}, {2<<20 - 5, 1 << 20}, {4097, 300 << 10},
			{0, len(wal)}, {len(wal) - 70000, 70000}, {123456, 64 << 10},
		} {
			src := wal[cut.off : cut.off+cut.n]
			stored, ok := compressWALChunk(src)
			if !ok || stored[0] != formatWALRecords {
				t.Fatalf("dim %d, %d bytes at %d: stored in form %#x (compressed %v), want 0x04", dim, cut.n, cut.off, stored[0], ok)
			}
			plain, _ := compressKind(nil, src, LevelFastest, kindWAL, formsHuff, nil)
			if len(stored) >= len(plain) {
				t.Errorf("dim %d, %d bytes at %d: form 0x04 %d bytes, form 0x01 %d", dim, cut.n, cut.off, len(stored), len(plain))
			}
			out, err := Decompress(make([]byte, 0, 10), stored)
			if err != nil || !bytes.Equal(out, src) {
				t.Fatalf("dim %d, %d bytes at %d: round trip: %v (equal %v)", dim, cut.n, cut.off, err, bytes.Equal(out, src))
			}
		}
	}
}

// TestWALRecordsNotWAL: chunks of a WAL file that are not Engram WAL
// (text, bare floats, random bytes, WAL entries without embeddings, a WAL
// whose embeddings cover under half the chunk) are stored exactly as before
// form 0x04: the same bytes as without it.
func TestWALRecordsNotWAL(t *testing.T) {
	small := genEngramWAL(1<<20, 8, "small dims") // 32-byte embeddings: under walMinRunWords
	for name, src := range map[string][]byte{
		"text":   genText(1<<20, 1),
		"floats": genFloats(1<<20, 2),
		"random": dataKinds[3].gen(1<<20, 3),
		"zeros":  make([]byte, 1<<20),
		"magics": bytes.Repeat([]byte(walMagic), 1<<18),
		"small":  small,
		"tiny":   genEngramWAL(10, 384, "tiny")[:63],
	} {
		want, wok := compressKind(nil, src, LevelFastest, kindWAL, formsHuff, nil)
		got, gok := compressWALChunk(src)
		if gok != wok || !bytes.Equal(got, want) {
			t.Errorf("%s: stored %d bytes (compressed %v), want %d (%v)", name, len(got), gok, len(want), wok)
		}
	}
}

// TestWALRecordsNeedsForm: without formsWALRecords (repositories before
// format 4) a WAL chunk is never stored in form 0x04.
func TestWALRecordsNeedsForm(t *testing.T) {
	src := genEngramWAL(1<<20, 768, "gate")[:1<<20]
	for _, f := range []forms{0, formsHuff} {
		if stored, ok := compressKind(nil, src, LevelFastest, kindWAL, f, nil); ok && stored[0] == formatWALRecords {
			t.Errorf("forms %b: stored in form 0x04", f)
		}
	}
	if stored, ok := CompressWAL(nil, src, LevelFastest, false); ok && stored[0] == formatWALRecords {
		t.Error("CompressWAL(records=false) stored form 0x04")
	}
	// The WAL archive's call in a format-4 repository gets it, and it decodes.
	stored, ok := CompressWAL(nil, src, LevelFastest, true)
	if !ok || stored[0] != formatWALRecords {
		t.Fatalf("CompressWAL(records=true): compressed %v, form %#x; want 0x04", ok, stored[0])
	}
	if back, err := Decompress(nil, stored); err != nil || !bytes.Equal(back, src) {
		t.Fatalf("CompressWAL(records=true) round trip: %v", err)
	}
	// Other kinds never get it.
	if stored, ok := compressKind(nil, src, LevelFastest, kindDefault, formsHuff|formsWALRecords, nil); ok && stored[0] == formatWALRecords {
		t.Error("a default-kind chunk was stored in form 0x04")
	}
}

// TestWALRecordsDamaged: every truncation and a flipped byte at every
// position of a stored 0x04 chunk either decodes (a changed literal; callers
// check the plaintext's ID) or fails with ErrCorrupt, never panics; crafted
// bodies fail with the error naming what is wrong.
func TestWALRecordsDamaged(t *testing.T) {
	src := genEngramWAL(40<<10, 384, "damaged")[100 : 100+(32<<10)]
	stored, ok := compressWALChunk(src)
	if !ok || stored[0] != formatWALRecords {
		t.Fatalf("not stored in form 0x04")
	}
	check := func(what string, b []byte) {
		out, err := Decompress(nil, b)
		if err == nil {
			if len(out) != len(src) {
				t.Fatalf("%s: decoded %d bytes without error, want %d", what, len(out), len(src))
			}
			return
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: %v wraps neither ErrCorrupt nor ErrTooLarge", what, err)
		}
	}
	for i := 1; i < len(stored); i++ {
		check(fmt.Sprint("truncated to ", i), stored[:i])
	}
	b := bytes.Clone(stored)
	for i := 1; i < len(b); i += 1 + i/64 {
		b[i] ^= 0x5a
		check(fmt.Sprint("byte ", i, " flipped"), b)
		b[i] ^= 0x5a
	}
	section := func(kind byte, body []byte) []byte { return appendSection(nil, kind, body) }
	uv := func(v ...uint64) (b []byte) {
		for _, x := range v {
			b = binary.AppendUvarint(b, x)
		}
		return b
	}
	form := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{{formatWALRecords}}, parts...), nil) }
	planes := func(n int) []byte { return bytes.Repeat(section(planeRaw, make([]byte, n)), 4) }
	for _, c := range []struct {
		name, want string
		b          []byte
	}{
		{"valid", "", form(uv(100, 1), section(planeRaw, uv(10, 20)), section(planeRaw, make([]byte, 20)), planes(20))},
		{"no runs", "", form(uv(100, 0), section(planeRaw, nil), section(planeRaw, make([]byte, 100)), planes(0))},
		{"too large", "content size 8388609 > limit", form(uv(8<<20+1, 1))},
		{"too many runs", "run count", form(uv(100, 26))},
		{"runs past the end", "layout: runs end past length 100", form(uv(100, 2), section(planeRaw, uv(10, 20, 0, 3)))},
		{"empty run", "layout: run 1: bad word count", form(uv(100, 2), section(planeRaw, uv(10, 2, 0, 0)))},
		{"layout too long", "layout: 2 trailing bytes", form(uv(100, 1), section(planeRaw, uv(10, 20, 1, 1)))},
		{"layout too short", "layout: run 1: bad gap", form(uv(100, 2), section(planeRaw, uv(10, 20)))},
		{"huffman layout", "layout: unknown kind 2", form(uv(100, 1), section(planeHuff, uv(10, 20)))},
		{"rest too short", "rest: 19 raw bytes, want 20", form(uv(100, 1), section(planeRaw, uv(10, 20)), section(planeRaw, make([]byte, 19)))},
		{"plane too short", "plane 3: 19 raw bytes, want 20", form(uv(100, 1), section(planeRaw, uv(10, 20)), section(planeRaw, make([]byte, 20)), planes(20)[:3*22], section(planeRaw, make([]byte, 19)))},
		{"trailing", "1 trailing bytes", form(uv(100, 1), section(planeRaw, uv(10, 20)), section(planeRaw, make([]byte, 20)), planes(20), []byte{0})},
	} {
		out, err := Decompress(nil, c.b)
		switch {
		case c.want == "" && (err != nil || len(out) != 100):
			t.Errorf("%s: %v (%d bytes)", c.name, err, len(out))
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// walrecGoldenInput is the input of testdata/walrec-0x04.bin: 200,003
// bytes of 768-dim WAL starting and ending mid-record.
func walrecGoldenInput() []byte {
	return genEngramWAL(220<<10, 768, "golden v1")[1001 : 1001+200003]
}

// TestWALRecordsGolden pins form 0x04: the golden file decodes to its input
// and the writer produces it byte for byte. Regenerate only for a deliberate
// change of the writer (go test -run WALRecordsGolden -update); the file
// must keep decoding forever, so keep a copy of the old one then.
func TestWALRecordsGolden(t *testing.T) {
	in := walrecGoldenInput()
	_, kinds := checkRecordsGolden(t, "walrec-0x04.bin", in, func() []byte { s, _ := compressWALChunk(in); return s })
	// The file holds a zstd layout and rest, raw mantissa planes and a
	// Huffman exponent plane.
	if want := []byte{planeZstd, planeZstd, planeRaw, planeRaw, planeRaw, planeHuff}; !bytes.Equal(kinds, want) {
		t.Errorf("section kinds %v, want %v", kinds, want)
	}
}

// checkRecordsGolden checks the form 0x04 golden file testdata/name (first
// rewriting it with write's output under -update): it decodes to in and
// write makes it byte for byte. It returns the file's run count and the
// kinds of its six sections.
func checkRecordsGolden(t *testing.T, name string, in []byte, write func() []byte) (runs uint64, kinds []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, write(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored := mustReadFile(t, path)
	if stored[0] != formatWALRecords {
		t.Fatalf("%s: format byte %#x", name, stored[0])
	}
	out, err := Decompress(nil, stored)
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("%s: decompress: %v (%d bytes, equal %v)", name, err, len(out), bytes.Equal(out, in))
	}
	if !bytes.Equal(write(), stored) {
		t.Fatalf("%s: the writer's stored form changed", name)
	}
	_, n := binary.Uvarint(stored[1:]) // the length
	runs, m := binary.Uvarint(stored[1+n:])
	b := stored[1+n+m:]
	for range 6 {
		l, n := binary.Uvarint(b[1:])
		kinds = append(kinds, b[0])
		b = b[1+n+int(l):]
	}
	return runs, kinds
}

// TestPipelineWALRecords: a pipeline stores WAL chunks as before (form 0x01
// or raw) until UseWALRecords, then in form 0x04, through SplitFile and SplitSmall alike;
// other files never get 0x04. Repositories before format 4 must never get
// it.
func TestPipelineWALRecords(t *testing.T) {
	wal := genEngramWAL(1<<20, 1024, "pipeline")[:1<<20]
	p := NewPipeline(2, LevelDefault)
	defer p.Close()
	p.UseHuffPlanes(true)
	for _, c := range []struct {
		on     bool
		rel    string
		want04 bool
	}{
		{false, "wal/wal-0000000000000001.log", false}, {true, "wal/wal-0000000000000001.log", true},
		{true, "warm/warm_tier.dat", false}, {true, "notes.bin", false}, {false, "wal/wal-0000000000000001.log", false},
	} {
		p.UseWALRecords(c.on)
		for _, small := range []bool{false, true} {
			data, params := wal, ParamsFor(c.rel)
			if small {
				data = wal[:params.Min-1]
			}
			st := newMemStore()
			var ids []ID
			var err error
			if small {
				ids, _, err = p.SplitSmall(bytes.Clone(data), nil, c.rel, params, testKey, nil, st.store)
			} else {
				ids, _, _, err = p.SplitFile(context.Background(), bytes.NewReader(data), c.rel, testPol, params, testKey, nil, st.store)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if is04 := st.comp[id] && st.stored[id][0] == formatWALRecords; is04 != c.want04 {
					t.Fatalf("on %v %s small %v: stored form %#x (compressed %v), want 0x04: %v", c.on, c.rel, small, st.stored[id][0], st.comp[id], c.want04)
				}
			}
			if !bytes.Equal(st.restore(t, ids), data) {
				t.Fatalf("on %v %s small %v: does not restore", c.on, c.rel, small)
			}
		}
	}
}

// FuzzWALRecords: any bytes compressed as a format-4 WAL chunk or warm
// page file chunk decode to themselves (the record and page scans trust
// nothing), and any bytes given to the decoder as form 0x04 never panic
// and fail only with ErrCorrupt or ErrTooLarge.
func FuzzWALRecords(f *testing.F) {
	wal := genEngramWAL(12<<10, 384, "fuzz")
	f.Add(wal[:4096])
	f.Add(wal[777 : 777+6000])
	if s, ok := compressWALChunk(wal[100:8000]); ok {
		f.Add(s[1:])
	}
	f.Add(bytes.Repeat([]byte(walMagic), 100))
	warm := genWarmPages(3, 64, 0, "fuzz", nil)
	f.Add(warm)
	f.Add(warm[100 : 100+6000])
	if s, ok := compressWarmChunk(warm); ok {
		f.Add(s[1:])
	}
	f.Add(bytes.Repeat([]byte(warmMagic+"\x00\x00\x00\x00"), 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		for kind, compress := range map[string]func([]byte) ([]byte, bool){"wal": compressWALChunk, "warm": compressWarmChunk} {
			if stored, ok := compress(b); ok {
				out, err := Decompress(nil, stored)
				if err != nil || !bytes.Equal(out, b) {
					t.Fatalf("%s: round trip: %v", kind, err)
				}
			}
		}
		out, err := Decompress(nil, append([]byte{formatWALRecords}, b...))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrTooLarge", err)
			}
			return
		}
		if len(out) > MaxChunkSize || len(out) < minCompressSize {
			t.Fatalf("decoded %d bytes", len(out))
		}
	})
}
