package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"

	"memento/chunk"
	"memento/index"
)

// TestPackHeaderRoundTrip pins the byte layout of a pack header and trailer.
func TestPackHeaderRoundTrip(t *testing.T) {
	blobs := []index.BlobInfo{
		{Type: uint8(DataBlob), Flags: FlagCompressed, ID: chunk.ID{0xaa}, Length: 100, RawLength: 300},
		{Type: uint8(TreeBlob), ID: chunk.ID{0xbb}, Length: 50, RawLength: 50, Offset: 100},
	}
	hdr := encodePackHeader("alpha", blobs)
	want := []byte{1, 5, 'a', 'l', 'p', 'h', 'a', 2, 0, 0, 0}
	if !bytes.Equal(hdr[:len(want)], want) || len(hdr) != len(want)+2*packEntrySize {
		t.Fatalf("header starts %x (len %d)", hdr[:len(want)], len(hdr))
	}
	e := hdr[len(want):]
	if e[0] != 1 || e[1] != 1 || e[2] != 0xaa || binary.LittleEndian.Uint32(e[34:]) != 100 || binary.LittleEndian.Uint32(e[38:]) != 300 {
		t.Fatalf("first entry %x", e[:packEntrySize])
	}
	space, got, err := decodePackHeader(hdr, 150)
	if err != nil || space != "alpha" || len(got) != 2 || got[0] != blobs[0] || got[1] != blobs[1] {
		t.Fatalf("decoded %q %+v %v", space, got, err)
	}
	tr := encodePackTrailer(0x01020304)
	if !bytes.Equal(tr, []byte{4, 3, 2, 1, 1, 0, 0, 0, 'M', 'P', 'A', 'K'}) {
		t.Fatalf("trailer %x", tr)
	}
	if hl, err := decodePackTrailer(tr, 0x01020304+packTrailerSize); err != nil || hl != 0x01020304 {
		t.Fatalf("trailer decodes to %d, %v", hl, err)
	}
}

func TestDecodePackHeaderRefuses(t *testing.T) {
	one := func(typ uint8, length, raw uint32) []byte {
		return encodePackHeader("s", []index.BlobInfo{{Type: typ, Length: length, RawLength: raw}})
	}
	// A header whose blobs add up to more than 4 GiB: offsets are 32-bit.
	var huge []index.BlobInfo
	for range 1<<32/MaxBlobSize + 1 {
		huge = append(huge, index.BlobInfo{Type: 1, Length: MaxBlobSize, RawLength: MaxBlobSize})
	}
	cases := []struct {
		name    string
		hdr     []byte
		dataLen int64
		want    string
	}{
		{"empty", nil, 0, "malformed pack: header of 0 bytes"},
		{"version", []byte{2, 0, 0, 0, 0, 0}, 0, "unsupported format: pack header version 2"},
		{"space truncated", []byte{1, 9, 'a'}, 0, "header truncated in space name"},
		{"count mismatch", append(one(1, 10, 10), 0), 10, "header claims 1 blob in 43 bytes"},
		{"type", one(3, 10, 10), 10, "blob 0 has type 3"},
		{"zero length", one(1, 0, 10), 0, "blob 0 has length 0"},
		{"too long", one(1, MaxBlobSize+1, 10), MaxBlobSize + 1, "blob 0 has length " + strconv.Itoa(MaxBlobSize+1)},
		{"raw too long", one(1, 10, MaxBlobSize+1), 10, "(raw " + strconv.Itoa(MaxBlobSize+1) + ")"},
		{"past data", one(1, 10, 10), 9, "blob 0 ends at 10, past the data (9 bytes)"},
		{"short of data", one(1, 10, 10), 11, "blobs cover 10 of 11 data bytes"},
		{"over 4 GiB", encodePackHeader("s", huge), int64(len(huge)) * MaxBlobSize, "past the 4 GiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodePackHeader(tc.hdr, tc.dataLen)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !errors.Is(err, errPackFormat) && !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v wraps neither errPackFormat nor ErrFormat", err)
			}
		})
	}
}

func TestDecodePackTrailerRefuses(t *testing.T) {
	good := encodePackTrailer(100)
	bad := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	cases := []struct {
		name string
		tr   []byte
		size int64
		want string
	}{
		{"short", good[1:], 200, "no MPAK trailer"},
		{"magic", bad(11, 'X'), 200, "no MPAK trailer"},
		{"version", bad(4, 2), 200, "unsupported format: pack version 2"},
		{"zero header", encodePackTrailer(0), 200, "header length 0"},
		{"header past start", good, 111, "header length 100 in a pack of 111 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodePackTrailer(tc.tr, tc.size); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
