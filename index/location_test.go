package index

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func pack(b byte) [32]byte {
	var p [32]byte
	for i := range p {
		p[i] = b + byte(i)
	}
	return p
}

var goldenLocations = []Location{
	{Pack: pack(0x10), Offset: 0, Length: 1, RawLength: 0, Type: 0, Flags: 0},
	{Pack: pack(0xa0), Offset: 0x01020304, Length: 0x0a0b0c0d, RawLength: 0xffffffff, Type: 1, Flags: 0x81},
}

// TestLocationGolden pins the on-disk encoding of format version 1: a change
// here must come with a FormatVersion bump.
func TestLocationGolden(t *testing.T) {
	var enc []byte
	for _, l := range goldenLocations {
		enc = appendLocation(enc, l)
	}
	if len(enc) != len(goldenLocations)*LocationSize {
		t.Fatalf("encoded %d bytes", len(enc))
	}
	golden := filepath.Join("testdata", "locations-v1.hex")
	if *update {
		if err := os.WriteFile(golden, []byte(hex.Dump(enc)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.Dump(enc); got != string(want) {
		t.Fatalf("encoding changed:\n%s\nwant:\n%s", got, want)
	}
	got, err := DecodeLocations(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != goldenLocations[i] {
			t.Errorf("location %d: got %+v, want %+v", i, got[i], goldenLocations[i])
		}
	}
}

func TestDecodeLocationsErrors(t *testing.T) {
	overflow := appendLocation(nil, Location{Offset: 0xffffff00, Length: 0x100})
	fits := appendLocation(nil, Location{Offset: 0xffffff00, Length: 0xff})
	cases := []struct {
		in   []byte
		want string
	}{
		{nil, "location record of 0 bytes, want a positive multiple of 46"},
		{make([]byte, 45), "location record of 45 bytes, want a positive multiple of 46"},
		{make([]byte, 47), "location record of 47 bytes, want a positive multiple of 46"},
		{overflow, "location 0: offset 4294967040 + length 256 overflows a pack"},
		{append(append([]byte(nil), fits...), overflow...), "location 1: offset 4294967040 + length 256 overflows a pack"},
		{fits, ""},
		{make([]byte, 46*3), ""},
	}
	for _, c := range cases {
		_, err := DecodeLocations(c.in)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("DecodeLocations(%d bytes) error %q, want %q", len(c.in), got, c.want)
		}
	}
}

func FuzzDecodeLocations(f *testing.F) {
	var seed []byte
	for _, l := range goldenLocations {
		seed = appendLocation(seed, l)
	}
	f.Add(seed)
	f.Add(seed[:LocationSize])
	f.Add(seed[:LocationSize-1])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, LocationSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := DecodeLocations(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "location") {
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		// What decodes must re-encode to the same bytes, and be sane.
		var enc []byte
		for _, l := range ls {
			if uint64(l.Offset)+uint64(l.Length) > 1<<32-1 {
				t.Fatalf("accepted overflowing location %+v", l)
			}
			enc = appendLocation(enc, l)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("round trip changed the bytes")
		}
		first, err := firstLocation(b)
		if err != nil || first != ls[0] {
			t.Fatalf("firstLocation = %+v, %v", first, err)
		}
	})
}
