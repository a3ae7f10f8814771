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
