package index

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestPackRecordRoundTrip(t *testing.T) {
	cases := []PackSummary{
		{ID: pack(1), Size: 0, Space: "s", Blobs: 0, Files: []string{"index/aa"}},
		{ID: pack(2), Size: 16 << 20, Space: strings.Repeat("x", 255), Blobs: 1 << 20, Files: []string{"index/aa", "index/bb"}},
		{ID: pack(3), Size: 1<<63 - 1, Space: "space-1", Blobs: 1<<32 - 1, Files: []string{strings.Repeat("n", 1000)}},
	}
	for _, want := range cases {
		got, err := decodePack(want.ID[:], encodePack(want))
		if err != nil {
			t.Fatalf("%x: %v", want.ID[:4], err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestDecodePackErrors(t *testing.T) {
	id := pack(0)
	good := encodePack(PackSummary{ID: id, Size: 10, Space: "abc", Blobs: 1, Files: []string{"index/f"}})
	neg := append([]byte(nil), good...)
	neg[7] = 0x80
	cases := []struct {
		key, rec []byte
		want     string
	}{
		{id[:5], good, "pack key of 5 bytes, want 32"},
		{id[:], good[:12], "pack 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f: record of 12 bytes is too short"},
		{id[:], good[:14], "pack 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f: space name truncated"},
		{id[:], good[:17], "pack 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f: file name length truncated"},
		{id[:], good[:len(good)-1], "pack 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f: file name truncated"},
		{id[:], neg, "pack 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f: size 9223372036854775818 out of range"},
	}
	for _, c := range cases {
		_, err := decodePack(c.key, c.rec)
		if err == nil || err.Error() != c.want {
			t.Errorf("decodePack(%d, %d bytes) = %v, want %q", len(c.key), len(c.rec), err, c.want)
		}
	}
}

func FuzzDecodePack(f *testing.F) {
	id := pack(0)
	f.Add(encodePack(PackSummary{ID: id, Size: 10, Space: "abc", Blobs: 1, Files: []string{"index/f", "index/g"}}))
	f.Add([]byte{})
	f.Add(make([]byte, 13))
	f.Fuzz(func(t *testing.T, rec []byte) {
		s, err := decodePack(id[:], rec)
		if err != nil {
			return
		}
		if s.Size < 0 {
			t.Fatalf("negative size %d accepted", s.Size)
		}
		if !bytes.Equal(encodePack(s), rec) {
			t.Fatalf("round trip changed the bytes")
		}
	})
}
