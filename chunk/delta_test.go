package chunk

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// deltaInputs returns a 32 KiB base and a chunk that differs from it in
// pages 1 and 6 (the warm page file's chunk size), fixed by BLAKE3.
func deltaInputs() (base, raw []byte) {
	d := blake3.New()
	d.WriteString("memento golden delta input v1")
	base = make([]byte, 32<<10)
	_, _ = d.Digest().Read(base)
	for i := range base { // compressible: a record of 3 KB per 4 KiB page, zero padded
		if i%DeltaPageSize >= 3072 {
			base[i] = 0
		}
	}
	raw = bytes.Clone(base)
	for _, p := range []int{1, 6} {
		for i := p * DeltaPageSize; i < p*DeltaPageSize+3072; i++ {
			raw[i] ^= byte(i)
		}
	}
	return base, raw
}

func compressPages(p []byte) ([]byte, bool) {
	return CompressFile(nil, p, "warm/warm_tier.dat", DefaultLevel)
}

func TestDeltaRoundTrip(t *testing.T) {
	base, raw := deltaInputs()
	pages := DiffPages(base, raw)
	if len(pages) != 2 || pages[0] != 1 || pages[1] != 6 {
		t.Fatalf("DiffPages = %v, want [1 6]", pages)
	}
	baseID := ID{1, 2, 3}
	frame := AppendDelta(nil, baseID, raw, pages, compressPages)
	d, err := ParseDelta(frame)
	if err != nil {
		t.Fatal(err)
	}
	if d.Base != baseID || d.RawLength != len(raw) || !d.Compressed || len(d.Pages) != 2 {
		t.Fatalf("parsed %+v", d)
	}
	out, err := ApplyDelta(nil, d, base)
	if err != nil || !bytes.Equal(out, raw) {
		t.Fatalf("ApplyDelta: %v, equal %v", err, bytes.Equal(out, raw))
	}
	// Uncompressed payload, and a short last page.
	short := raw[:len(raw)-100]
	frame = AppendDelta(nil, baseID, short, []uint16{7}, func(p []byte) ([]byte, bool) { return p, false })
	if d, err = ParseDelta(frame); err != nil || d.Compressed || d.PagesLength() != DeltaPageSize-100 {
		t.Fatalf("short: %+v %v", d, err)
	}
	out, err = ApplyDelta(nil, d, base[:len(short)])
	if err != nil || !bytes.Equal(out[7*DeltaPageSize:], short[7*DeltaPageSize:]) || !bytes.Equal(out[:7*DeltaPageSize], base[:7*DeltaPageSize]) {
		t.Fatalf("short apply: %v", err)
	}
	if _, err := ApplyDelta(nil, d, base); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "on a base of 32768") {
		t.Fatalf("wrong base length: %v", err)
	}
}

// TestDeltaFrameRefused: every malformed frame is ErrCorrupt with its reason.
func TestDeltaFrameRefused(t *testing.T) {
	base, raw := deltaInputs()
	good := AppendDelta(nil, ID{9}, raw, DiffPages(base, raw), func(p []byte) ([]byte, bool) { return p, false })
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, c := range []struct {
		name, want string
		frame      []byte
	}{
		{"short", "shorter than its 40-byte header", good[:39]},
		{"version", "delta frame version 2", mut(func(b []byte) []byte { b[0] = 2; return b })},
		{"flags", "unknown bits", mut(func(b []byte) []byte { b[1] = 4; return b })},
		{"raw zero", "raw length 0 outside", mut(func(b []byte) []byte { copy(b[34:38], []byte{0, 0, 0, 0}); return b })},
		{"raw huge", "outside 1..8388608", mut(func(b []byte) []byte { copy(b[34:38], []byte{0, 0, 0, 1}); return b })},
		{"no page", "of no page", mut(func(b []byte) []byte { b[38], b[39] = 0, 0; return b })},
		{"pages past end", "lists 60000 pages", mut(func(b []byte) []byte { b[38], b[39] = 0x60, 0xea; return b })},
		{"page out of range", "page 8 out of range (the chunk has 8 pages)", mut(func(b []byte) []byte { b[42] = 8; return b })},
		{"not increasing", "not increasing (1 after 1)", mut(func(b []byte) []byte { b[42] = 1; return b })},
	} {
		_, err := ParseDelta(c.frame)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrCorrupt with %q", c.name, err, c.want)
		}
	}
	// A payload of the wrong length is refused by ApplyDelta.
	d, err := ParseDelta(good[:len(good)-1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyDelta(nil, d, base); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "delta pages are 8191 bytes, its 2 pages need 8192") {
		t.Fatalf("short payload: %v", err)
	}
}

// TestDeltaGolden pins the bytes of a delta frame (format 4's stored form
// of a delta blob, docs/repository-format.md): the frame written today
// must be testdata/delta-v1.bin byte for byte, and that file must decode to
// the chunk. Regenerate only for a deliberate format change (-update).
func TestDeltaGolden(t *testing.T) {
	base, raw := deltaInputs()
	frame := AppendDelta(nil, ID(blake3.Sum256([]byte("base"))), raw, DiffPages(base, raw), compressPages)
	path := filepath.Join("testdata", "delta-v1.bin")
	if *update {
		if err := os.WriteFile(path, frame, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(frame, want) {
		t.Fatalf("delta frame changed: %d bytes, %s..., golden %d bytes", len(frame), hex.EncodeToString(frame[:48]), len(want))
	}
	if got := hex.EncodeToString(want[:44]); got != "0101"+ID(blake3.Sum256([]byte("base"))).String()+"00800000"+"0200"+"01000600" {
		t.Fatalf("golden header %s", got)
	}
	d, err := ParseDelta(want)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ApplyDelta(nil, d, base)
	if err != nil || !bytes.Equal(out, raw) {
		t.Fatalf("golden frame does not decode to the chunk: %v", err)
	}
}

// FuzzParseDelta: no frame makes ParseDelta or ApplyDelta panic, and what
// ApplyDelta returns without error has the base's length.
func FuzzParseDelta(f *testing.F) {
	base, raw := deltaInputs()
	f.Add(AppendDelta(nil, ID{1}, raw, DiffPages(base, raw), compressPages))
	f.Add(AppendDelta(nil, ID{1}, raw, DiffPages(base, raw), func(p []byte) ([]byte, bool) { return p, false }))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDelta(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		in := base
		if d.RawLength != len(base) {
			in = make([]byte, d.RawLength)
		}
		out, err := ApplyDelta(nil, d, in)
		if err == nil && len(out) != d.RawLength {
			t.Fatalf("applied %d bytes, want %d", len(out), d.RawLength)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("apply error not ErrCorrupt: %v", err)
		}
	})
}
