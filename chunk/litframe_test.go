package chunk

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// litFrameInputs: every size class of the frame header's content size and
// of the literals header, block boundaries, and blocks that are Huffman
// coded, constant (RLE), incompressible (raw) and under 1 KiB (raw).
func litFrameInputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(11, 12))
	in := map[string][]byte{}
	for _, n := range []int{64, 255, 256, 1023, 1024, 1025, 16383, 16384, 65535, 65791, 65792, litBlockSize - 1, litBlockSize,
		litBlockSize + 1, litBlockSize + 1023, 3*litBlockSize + 5000, 1<<20 + 3} {
		floats := genFloats(n, uint64(n))
		in["floats/"+itoa(n)] = floats
		mixed := make([]byte, n)
		for i := range mixed {
			switch i / litBlockSize % 3 {
			case 0:
				mixed[i] = byte(rng.Uint32() & 15)
			case 1:
				mixed[i] = 9
			default:
				mixed[i] = byte(rng.Uint32())
			}
		}
		in["mixed/"+itoa(n)] = mixed
	}
	in["wal"] = genWAL(1<<20, 5)
	return in
}

func itoa(n int) string { return string(binary.AppendUvarint(nil, uint64(n))) }

// litBlockTypes parses a frame written by appendLitFrame and counts its
// blocks by kind: raw, rle, huff (a new table) and treeless (the previous
// block's table).
func litBlockTypes(t *testing.T, frame []byte, size int) map[string]int {
	t.Helper()
	if binary.LittleEndian.Uint32(frame) != 0xFD2FB528 {
		t.Fatalf("magic %x", frame[:4])
	}
	fhd := frame[4]
	if fhd&(1<<5) == 0 || fhd&(1<<2) != 0 || fhd&3 != 0 {
		t.Fatalf("frame header descriptor %#x: want single segment, no checksum, no dictionary", fhd)
	}
	var fcs, n int
	switch fhd >> 6 {
	case 0:
		fcs, n = int(frame[5]), 1
	case 1:
		fcs, n = int(binary.LittleEndian.Uint16(frame[5:]))+256, 2
	case 2:
		fcs, n = int(binary.LittleEndian.Uint32(frame[5:])), 4
	default:
		fcs, n = int(binary.LittleEndian.Uint64(frame[5:])), 8
	}
	if fcs != size {
		t.Fatalf("content size %d, want %d", fcs, size)
	}
	p := frame[5+n:]
	kinds := map[string]int{}
	for {
		h := uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16
		typ, bs := h>>1&3, int(h>>3)
		p = p[3:]
		switch typ {
		case zstdBlockRaw:
			kinds["raw"]++
			p = p[bs:]
		case zstdBlockRLE:
			kinds["rle"]++
			p = p[1:]
		case zstdBlockCompressed:
			if p[0]&3 == litTreeless {
				kinds["treeless"]++
			} else {
				kinds["huff"]++
			}
			if p[bs-1] != 0 {
				t.Fatalf("block has sequences")
			}
			p = p[bs:]
		default:
			t.Fatalf("block type %d", typ)
		}
		if h&1 != 0 {
			break
		}
	}
	if len(p) != 0 {
		t.Fatalf("%d bytes after the last block", len(p))
	}
	return kinds
}

// TestLitFrameRoundTrip: literals-only frames of every size decode to their
// input through Decompress, and every block kind (Huffman with its table,
// treeless, RLE, raw) occurs.
func TestLitFrameRoundTrip(t *testing.T) {
	seen := map[string]int{}
	for name, src := range litFrameInputs() {
		stored := appendLitFrame([]byte{formatZstd}, src)
		out, err := Decompress(nil, stored)
		if err != nil || !bytes.Equal(out, src) {
			t.Fatalf("%s: %v (%d bytes, equal %v)", name, err, len(out), bytes.Equal(out, src))
		}
		for k, n := range litBlockTypes(t, stored[1:], len(src)) {
			seen[k] += n
		}
	}
	for _, k := range []string{"raw", "rle", "huff", "treeless"} {
		if seen[k] == 0 {
			t.Errorf("no %s block in any frame (%v)", k, seen)
		}
	}
}

// TestLitFrameZstdCLI: the zstd command line tool (the reference
// implementation, not the Go decoder the tests otherwise use) decodes the
// frames to their input.
func TestLitFrameZstdCLI(t *testing.T) {
	zstd, err := exec.LookPath("zstd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("zstd command not found")
		}
		t.Skip("zstd command not found")
	}
	dir := t.TempDir()
	for name, src := range litFrameInputs() {
		path := filepath.Join(dir, "f.zst")
		if err := os.WriteFile(path, appendLitFrame(nil, src), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zstd, "-d", "-q", "-c", path).Output()
		if err != nil || !bytes.Equal(out, src) {
			t.Fatalf("%s: zstd -d: %v (%d bytes, equal %v)", name, err, len(out), bytes.Equal(out, src))
		}
	}
}

// walRecords returns n bytes of WAL records. Without repeat they are
// shaped as the Engram WAL's: a binary header, an ID, a 768-dim float32
// embedding at a varying byte phase and a short text of random letters, so
// zstd finds no matches; with repeat they are genWAL's, whose JSON documents
// repeat their keys and zstd's matches beat Huffman coding alone.
func walRecords(n int, seed uint64, repeat bool) []byte {
	if repeat {
		return genWAL(n, seed)
	}
	r := rand.New(rand.NewPCG(seed, 3))
	out := make([]byte, 0, n+8192)
	for len(out) < n {
		var hdr [16]byte
		binary.LittleEndian.PutUint64(hdr[:], r.Uint64())
		binary.LittleEndian.PutUint64(hdr[8:], r.Uint64())
		out = append(out, hdr[:]...)
		out = append(out, genFloats(embeddingDim*4, r.Uint64())...)
		for range 20 + r.IntN(60) {
			out = append(out, byte('a'+r.IntN(26)))
		}
	}
	return out[:n]
}

// TestCompressWALVerdict: a segment of WAL chunks without repeats is
// written as literals-only frames after its first chunk (checked again
// every walRecheck chunks); a segment whose records repeat keeps zstd's
// frames, byte for byte what zstd writes; both decode.
func TestCompressWALVerdict(t *testing.T) {
	const size = 1 << 20
	for _, c := range []struct {
		name   string
		repeat bool
		lit    int32
	}{{"plain", false, 1}, {"repeating", true, 2}} {
		var m walMode
		litFrames := 0
		for i := range walRecheck + 2 {
			src := walRecords(size, uint64(100+i), c.repeat)
			stored, ok := compressWAL(nil, src, LevelDefault, &m, nil)
			if !ok {
				t.Fatalf("%s: chunk %d stored raw", c.name, i)
			}
			out, err := Decompress(nil, stored)
			if err != nil || !bytes.Equal(out, src) {
				t.Fatalf("%s: chunk %d: %v", c.name, i, err)
			}
			if m.lit.Load() != c.lit {
				t.Fatalf("%s: chunk %d: verdict %d, want %d", c.name, i, m.lit.Load(), c.lit)
			}
			zs := encoder(LevelFastest).EncodeAll(src, []byte{formatZstd})
			lit := appendLitFrame([]byte{formatZstd}, src)
			if bytes.Equal(stored, lit) {
				litFrames++
			}
			switch {
			case c.lit == 2 && !bytes.Equal(stored, zs):
				t.Fatalf("%s: chunk %d: not zstd's frame", c.name, i)
			case c.lit == 1 && !bytes.Equal(stored, lit) && !(len(zs) < len(lit) && bytes.Equal(stored, zs)):
				// The chunks compressed both ways keep the smaller.
				t.Fatalf("%s: chunk %d: neither the literals-only frame nor a smaller zstd frame", c.name, i)
			case c.lit == 2 && len(lit)*1000 <= len(zs)*(1000+litSlackPermille):
				t.Fatalf("%s: chunk %d: repeats do not make zstd smaller (%d vs %d)", c.name, i, len(zs), len(lit))
			}
		}
		if c.lit == 1 && litFrames < walRecheck {
			t.Fatalf("%s: %d literals-only frames of %d chunks", c.name, litFrames, walRecheck+2)
		}
	}
	// Other levels and callers without a verdict store what compressKind does.
	src := walRecords(size, 7, false)
	for _, l := range []Level{LevelBalanced, LevelNone} {
		var m walMode
		got, gok := compressWAL(nil, src, l, &m, nil)
		want, wok := compressKind(nil, src, l, kindWAL, false, nil)
		if gok != wok || !bytes.Equal(got, want) || m.lit.Load() != 0 {
			t.Fatalf("level %s: compressWAL differs from compressKind", l)
		}
	}
	// Incompressible chunks are stored raw without a verdict.
	rnd := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(rng.Uint32())
	}
	var m walMode
	if _, ok := compressWAL(nil, rnd, LevelDefault, &m, nil); ok || m.lit.Load() != 0 {
		t.Fatalf("random chunk: compressed %v, verdict %d", ok, m.lit.Load())
	}
}
