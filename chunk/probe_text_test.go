package chunk

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// noisyText is n bytes (n >= 4 probe windows) of a repeated line, except
// for the three probeWindow windows samplePays samples (at a quarter, half
// and three quarters), which hold bytes drawn uniformly from alphabet: a
// chunk whose samples say "incompressible" but whose whole compresses.
func noisyText(n int, alphabet []byte, seed uint64) []byte {
	line := []byte("\tif err := p.flush(ctx); err != nil {\n\t\treturn fmt.Errorf(\"flush: %w\", err)\n\t}\n")
	b := make([]byte, 0, n)
	for len(b) < n {
		b = append(b, line...)
	}
	b = b[:n]
	r := rand.New(rand.NewPCG(seed, 1))
	for _, q := range [...]int{1, 2, 3} {
		off := ((n - probeWindow) * q / 4) &^ 3
		for i := off; i < off+probeWindow; i++ {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
	}
	return b
}

// TestTextNotProbed: a chunk that looks like text is compressed whole
// without the incompressibility probe, whatever its samples say; one that
// does not is probed, and stored raw when no sample pays. Before, the text
// chunk below (whose three sampled windows are printable noise that zstd
// cannot shrink by 2 %, the rest a repeated line) was stored raw.
func TestTextNotProbed(t *testing.T) {
	var printable, binary []byte
	for c := 0x20; c < 0x100; c++ {
		if c != 0x7f {
			printable = append(printable, byte(c)) // no control bytes: text
		}
	}
	for c := range 0x100 {
		binary = append(binary, byte(c)) // 12.5 % control bytes: not text
	}
	for _, n := range []int{4 * probeWindow, 200 << 10, 300 << 10, 1 << 20} {
		txt := noisyText(n, printable, uint64(n))
		if !looksLikeText(txt) {
			t.Fatalf("%d: the noisy text does not look like text", n)
		}
		if s := probeSample(txt, probeWindow); samplePaysOff(len(s), len(encoder(LevelBalanced).EncodeAll(s, nil))) {
			t.Fatalf("%d: the noisy text's middle sample compresses: the test proves nothing", n)
		}
		stored, compressed := CompressFile(nil, txt, "src/x.go", LevelDefault)
		if !compressed {
			t.Errorf("text %d bytes: stored raw, want compressed (the probe ran)", n)
		} else if got, err := Decompress(nil, stored); err != nil || !bytes.Equal(got, txt) {
			t.Errorf("text %d bytes: decompress: %v", n, err)
		}
		bin := noisyText(n, binary, uint64(n))
		if looksLikeText(bin) {
			t.Fatalf("%d: the noisy binary looks like text", n)
		}
		if stored, compressed := CompressFile(nil, bin, "src/x.bin", LevelDefault); compressed || !bytes.Equal(stored, bin) {
			t.Errorf("binary %d bytes: compressed %v (%d bytes), want stored raw after the probe", n, compressed, len(stored))
		}
	}
}

// TestTextStoredFormUnchanged: real text between 64 KiB and the largest
// chunk is stored as before the probe was skipped: format byte 0x01 and
// the zstd frame of the whole chunk at the file's level.
func TestTextStoredFormUnchanged(t *testing.T) {
	for _, n := range []int{64 << 10, 100 << 10, 300 << 10, 1 << 20} {
		src := genText(n, uint64(n))
		stored, compressed := CompressFile(nil, src, "doc/x.txt", LevelDefault)
		want := encoder(LevelBalanced).EncodeAll(src, []byte{formatZstd})
		if !compressed || !bytes.Equal(stored, want) {
			t.Errorf("%d bytes: compressed %v, %d bytes, want the 0x01 frame of %d bytes", n, compressed, len(stored), len(want))
		}
	}
}
