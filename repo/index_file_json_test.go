package repo

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"memento/index"
)

// TestIndexFileJSON: IndexFile.appendJSON writes what json.Marshal writes,
// byte for byte (an index file's name is the hash of its bytes), for
// random packs and the edge cases: no packs, a pack without blobs, nil
// slices, a space json escapes, the largest numbers.
func TestIndexFileJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func() (b [32]byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	cases := []IndexFile{
		{Version: 1},
		{Version: 1, Packs: []indexPack{}},
		{Version: 1, Packs: []indexPack{{ID: id(), Space: ""}}},
		{Version: 1, Packs: []indexPack{{ID: id(), Size: math.MaxInt64, Space: "a<b>&c\u2028\"\\\x01\xff/é", Blobs: []indexBlob{}}}},
		{Version: 1, Packs: []indexPack{{ID: id(), Size: -1, Space: "x", Blobs: []indexBlob{{ID: id(), Type: 255, Flags: 255,
			Offset: math.MaxUint32, Length: math.MaxUint32, RawLength: math.MaxUint32}}}}},
		toIndexFile(testPacks()),
	}
	for range 20 {
		var packs []index.PackInfo
		for p := range rng.IntN(5) {
			pi := index.PackInfo{ID: id(), Size: rng.Int64N(1 << 30), Space: []string{"", "/paths", "tenant_01", "sp\tace"}[rng.IntN(4)]}
			for range rng.IntN(300) * (p % 3) {
				pi.Blobs = append(pi.Blobs, index.BlobInfo{ID: id(), Type: uint8(rng.IntN(3)), Flags: uint8(rng.IntN(8)),
					Offset: rng.Uint32(), Length: rng.Uint32N(1 << 20), RawLength: rng.Uint32()})
			}
			packs = append(packs, pi)
		}
		cases = append(cases, toIndexFile(packs))
	}
	for i, f := range cases {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.appendJSON([]byte("prefix")); !bytes.Equal(got[6:], want) || string(got[:6]) != "prefix" {
			t.Errorf("case %d: appendJSON\n%.300s\nwant\n%.300s", i, got, want)
		}
	}
}

// FuzzIndexFileJSON: appendJSON against json.Marshal on index files built
// from the fuzzer's bytes: any space name (invalid UTF-8, control
// characters, HTML and line-separator runes json escapes), any numbers,
// packs with nil, empty and several blobs, consecutive packs of one space
// and of two (appendJSON reuses the encoded space of the pack before).
func FuzzIndexFileJSON(f *testing.F) {
	f.Add(1, "tenant_01", "/paths", int64(0), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(-1, "a<b>&c\u2028\u2029\"\\\x00\x1f\x7f\xff\xfe/é", "", int64(math.MinInt64), []byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Add(math.MaxInt, "\ufffd", "\xed\xa0\x80", int64(math.MaxInt64), []byte{})
	f.Fuzz(func(t *testing.T, version int, space1, space2 string, size int64, data []byte) {
		var ix IndexFile
		ix.Version = version
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		u32 := func() uint32 { return uint32(next())<<24 | uint32(next())<<16 | uint32(next())<<8 | uint32(next()) }
		if next()%4 != 0 {
			ix.Packs = []indexPack{}
		}
		for len(data) > 0 && ix.Packs != nil {
			p := indexPack{Size: size ^ int64(next())<<56, Space: space1}
			if next()%2 == 1 {
				p.Space = space2
			}
			p.ID[0], p.ID[31] = next(), next()
			switch n := int(next() % 8); n {
			case 0: // nil
			case 1:
				p.Blobs = []indexBlob{}
			default:
				for range n - 1 {
					b := indexBlob{Type: next(), Flags: next(), Offset: u32(), Length: u32(), RawLength: u32()}
					b.ID[0], b.ID[15] = next(), next()
					p.Blobs = append(p.Blobs, b)
				}
			}
			ix.Packs = append(ix.Packs, p)
		}
		want, err := json.Marshal(ix)
		if err != nil {
			t.Fatal(err)
		}
		if got := ix.appendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("appendJSON\n%q\njson.Marshal\n%q", got, want)
		}
	})
}
