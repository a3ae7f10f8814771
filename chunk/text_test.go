package chunk

import (
	"bytes"
	"strings"
	"testing"
)

// TestLooksLikeText: text (ASCII, UTF-8, source code, JSON) is text; float
// data, the Engram WAL, random bytes and zeros are not.
func TestLooksLikeText(t *testing.T) {
	goSrc := strings.Repeat("func (p *Packer) Add(t BlobType, id chunk.ID) error {\n\tif p.cur == nil {\n\t\treturn nil\n\t}\n}\n", 200)
	for _, tt := range []struct {
		name string
		data []byte
		want bool
	}{
		{"prose", genText(100_000, 1), true},
		{"go source", []byte(goSrc), true},
		{"utf-8", []byte(strings.Repeat("Grüße, 世界! ünïcode\r\n", 500)), true},
		{"json", []byte(strings.Repeat(`{"id":"9a8b7c6d","t":1,"o":123,"l":456},`, 300)), true},
		{"short text", []byte("hello, hello, hello, hello, hello, hello, hello, hello, hello!"), true},
		{"floats", genFloats(1<<20, 2), false},
		{"wal", genWAL(1<<20, 3), false},
		{"random", dataKinds[3].gen(1<<20, 4), false},
		{"zeros", make([]byte, 1<<20), false},
		{"empty", nil, false},
	} {
		if got := looksLikeText(tt.data); got != tt.want {
			t.Errorf("%s: looksLikeText = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestTextCompressedBetter: under LevelFastest (the default), text is
// stored as exactly the zstd frame of textCompressLevel, smaller than the
// fastest level's; binary data keeps the fastest level's bytes. Both
// decompress to the plaintext.
func TestTextCompressedBetter(t *testing.T) {
	frame := func(l Level, src []byte) []byte {
		return encoder(l).EncodeAll(src, []byte{formatZstd})
	}
	text := genText(300_000, 7)
	stored, ok := Compress(nil, text, LevelFastest)
	if !ok || !bytes.Equal(stored, frame(textCompressLevel, text)) {
		t.Fatalf("text under LevelFastest: compressed %v, %d bytes; want the %v frame of %d bytes", ok, len(stored), textCompressLevel, len(frame(textCompressLevel, text)))
	}
	if fast := frame(LevelFastest, text); len(stored) >= len(fast) {
		t.Fatalf("text at %v: %d bytes, not smaller than fastest's %d", textCompressLevel, len(stored), len(fast))
	}
	// Compressible binary: text with a control byte every 16 bytes.
	bin := bytes.Clone(text)
	for i := 0; i < len(bin); i += 16 {
		bin[i] = 0x01
	}
	if looksLikeText(bin) {
		t.Fatal("binary data taken for text")
	}
	stored2, ok := Compress(nil, bin, LevelFastest)
	if !ok || !bytes.Equal(stored2, frame(LevelFastest, bin)) {
		t.Fatalf("binary under LevelFastest: compressed %v, %d bytes; want the fastest frame of %d bytes", ok, len(stored2), len(frame(LevelFastest, bin)))
	}
	// An explicit level other than fastest is used as asked, text or not.
	if s, ok := Compress(nil, text, LevelBalanced); !ok || !bytes.Equal(s, frame(LevelBalanced, text)) {
		t.Fatalf("text under LevelBalanced: compressed %v, %d bytes", ok, len(s))
	}
	for i, s := range [][]byte{stored, stored2} {
		want := [][]byte{text, bin}[i]
		if plain, err := Decompress(nil, s); err != nil || !bytes.Equal(plain, want) {
			t.Fatalf("round trip %d: %v", i, err)
		}
	}
}

// TestLooksLikeTextNULs: the NUL count that refuses binary samples early
// decides as counting every control byte does, at the threshold too (a
// 4 KiB sample may hold 40 control bytes, NUL or not, and stay text).
func TestLooksLikeTextNULs(t *testing.T) {
	byteByByte := func(p []byte) bool { // looksLikeText before the NUL count
		s := probeSample(p, smallChunkWindow)
		ctl := 0
		for _, c := range s {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' || c == 0x7f {
				ctl++
			}
		}
		return len(s) > 0 && textShare(ctl, len(s))
	}
	text := genText(smallChunkWindow, 5)
	for _, c := range []struct {
		nul, other int // NULs and other control bytes put in the sample
		want       bool
	}{{0, 0, true}, {40, 0, true}, {41, 0, false}, {20, 20, true}, {20, 21, false}, {0, 41, false}, {4096, 0, false}} {
		p := bytes.Clone(text)
		for i := range c.nul {
			p[i*97%len(p)] = 0
		}
		for i := range c.other {
			p[(i*97+13)%len(p)] = 0x7f
		}
		if got, ref := looksLikeText(p), byteByByte(p); got != c.want || ref != c.want {
			t.Errorf("%d NULs, %d other control bytes: looksLikeText %v, byte by byte %v, want %v", c.nul, c.other, got, ref, c.want)
		}
	}
	for seed := range 64 { // binary and mixed samples of every kind
		p := dataKinds[seed%len(dataKinds)].gen(smallChunkWindow+seed*13, uint64(seed))
		if got, ref := looksLikeText(p), byteByByte(p); got != ref {
			t.Errorf("%s (seed %d): looksLikeText %v, byte by byte %v", dataKinds[seed%len(dataKinds)].name, seed, got, ref)
		}
	}
}
