package chunk

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"
)

// storedGoldenInput is 160,003 bytes of float32-like words fixed by the
// BLAKE3 specification, shaped so that shuffle4 gives one plane of each
// kind: byte 0 zero (Huffman RLE blocks), byte 1 four random bits (Huffman
// coded), byte 2 random (a raw plane), byte 3 a pattern repeating every
// 64 words (a zstd frame beats Huffman coding on it).
func storedGoldenInput() []byte {
	d := blake3.New()
	d.WriteString("memento golden stored form input v1")
	x := make([]byte, 2*40000+3)
	_, _ = d.Digest().Read(x)
	out := make([]byte, 0, 4*40000+3)
	for i := range 40000 {
		out = append(out, 0, x[2*i]&15, x[2*i+1], byte(0x3c+i%64%7))
	}
	return append(out, x[80000:]...)
}

// TestStoredFormGolden pins the stored forms of shuffled chunks: the file
// written by the format 0x02 writer (zstd planes, before issue 18's third
// round) must still decode, and today's writer must produce it byte for byte
// without huff (repositories before format 3) and the 0x03 file with it.
// Regenerate 0x03 only for a deliberate format change (go test -run
// StoredFormGolden -update); never regenerate 0x02.
func TestStoredFormGolden(t *testing.T) {
	in := storedGoldenInput()
	ent := [4]float64{0, 0, randomPlaneEntropy, 0}
	for _, c := range []struct {
		file   string
		format byte
		write  func() []byte
	}{
		{"stored-0x02.bin", formatZstdShuffle4, func() []byte { return compressShuffled(nil, in, LevelFastest, ent, false, nil) }},
		{"stored-0x03.bin", formatShuffle4Huff, func() []byte { return compressShuffled(nil, in, LevelFastest, ent, true, nil) }},
	} {
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, c.write(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		stored, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if stored[0] != c.format {
			t.Fatalf("%s: format byte %#x, want %#x", c.file, stored[0], c.format)
		}
		out, err := Decompress(nil, stored)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%s: decompress: %v (%d bytes, equal %v)", c.file, err, len(out), bytes.Equal(out, in))
		}
		if !bytes.Equal(c.write(), stored) {
			t.Fatalf("%s: the writer's stored form changed", c.file)
		}
	}
	// The 0x03 file holds every section kind and Huffman block mode but raw
	// blocks (TestHuffBlocksRoundTrip has those).
	want := map[byte]bool{planeRaw: true, planeZstd: true, planeHuff: true}
	for _, k := range sectionKinds(t, mustReadFile(t, filepath.Join("testdata", "stored-0x03.bin"))) {
		delete(want, k)
	}
	if len(want) != 0 {
		t.Errorf("section kinds %v missing from the 0x03 golden file", want)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sectionKinds lists the plane section kinds of a shuffled stored form.
func sectionKinds(t *testing.T, stored []byte) []byte {
	_, n := uvarint(stored[1:])
	p := stored[1+n:]
	var kinds []byte
	for range 4 {
		l, n := uvarint(p[1:])
		kinds = append(kinds, p[0])
		p = p[1+n+int(l):]
	}
	if len(p) != 0 {
		t.Fatalf("%d trailing bytes", len(p))
	}
	return kinds
}

// TestHuffBlocksRoundTrip: planes of every length around the block size,
// mixing incompressible, constant and skewed blocks, decode to themselves,
// and an incompressible block is stored raw in a section that pays.
func TestHuffBlocksRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	modes := map[byte]int{}
	for _, n := range []int{1, 63, 64, 65, 1000, huffBlockSize - 1, huffBlockSize, huffBlockSize + 5, 3*huffBlockSize + 70} {
		for pattern := range 3 {
			p := make([]byte, n)
			for i := range p {
				switch blk := i / huffBlockSize; (blk + pattern) % 3 {
				case 0:
					p[i] = byte(rng.Uint32())
				case 1:
					p[i] = 7
				default:
					p[i] = byte(rng.Uint32() & 7)
				}
			}
			body := appendHuffBlocks(nil, p)
			for b, rest := 0, body; len(rest) > 0; b++ {
				size := min(huffBlockSize, n-b*huffBlockSize)
				modes[rest[0]]++
				switch rest[0] {
				case huffBlockRaw:
					rest = rest[1+size:]
				case huffBlockRLE:
					rest = rest[2:]
				default:
					l, k := uvarint(rest[1:])
					rest = rest[1+k+int(l):]
				}
			}
			got, err := decodeHuffBlocks([]byte("x"), body, n)
			if err != nil || !bytes.Equal(got[1:], p) || got[0] != 'x' {
				t.Fatalf("%d bytes, pattern %d: %v", n, pattern, err)
			}
		}
	}
	if modes[huffBlockRaw] == 0 || modes[huffBlockRLE] == 0 || modes[huffBlockHuff] == 0 {
		t.Fatalf("block modes %v: want each", modes)
	}
}

func uvarint(b []byte) (uint64, int) { return binary.Uvarint(b) }
