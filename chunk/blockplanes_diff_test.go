package chunk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// FuzzBlockPlanesAsWhole is a differential fuzz test of the block-by-block
// decoder of form 0x03: on arbitrary bodies (kind 0) and on valid stored
// forms of float32 embeddings, low-entropy floats and text of any length
// (kinds 1-3), damaged by the flips and truncation muts describes,
// decodeShuffled must return what decoding whole planes returns, bytes
// and error text; and decodeBlockPlanes alone must accept exactly what the
// whole-plane decoder accepts, with the same bytes.
//
//	go test -run '^$' -fuzz FuzzBlockPlanesAsWhole -parallel 1 ./chunk/
func FuzzBlockPlanesAsWhole(f *testing.F) {
	f.Add([]byte{0x80, 0x01, 2, 1, 0}, uint8(0), uint32(0), uint64(0), []byte{})
	f.Add([]byte{}, uint8(1), uint32(1<<20+3), uint64(1), []byte{})
	f.Add([]byte{}, uint8(2), uint32(700_001), uint64(2), []byte{0, 1, 0, 0x5a, 0, 200, 0, 0x11})
	f.Add([]byte{}, uint8(3), uint32(4*huffBlockSize+2), uint64(3), []byte{0, 0, 9, 1})
	f.Add([]byte{}, uint8(1), uint32(8*huffBlockSize+1), uint64(4), []byte{1, 0, 0, 0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte, kind uint8, n uint32, seed uint64, muts []byte) {
		src := append([]byte{formatShuffle4Huff}, body...)
		if kind%4 != 0 {
			src = blockPlanesFuzzForm(kind%4, int(n%(3<<19))+minCompressSize, seed)
			for i := 0; i+4 <= len(muts) && len(src) > 2; i += 4 {
				pos := 2 + (int(muts[i])<<16|int(muts[i+1])<<8|int(muts[i+2]))%(len(src)-2)
				if muts[i+3] == 0 {
					src = src[:pos]
				} else {
					src[pos] ^= muts[i+3]
				}
			}
		}
		if len(src) < 2 {
			return
		}
		got, gerr := decodeShuffled([]byte("stale bytes"), src[1:], MaxChunkSize, true)
		want, werr := decodeWholeRef(src)
		switch {
		case fmt.Sprint(gerr) != fmt.Sprint(werr):
			t.Fatalf("error %v, decoding whole planes gives %v", gerr, werr)
		case gerr == nil && !bytes.Equal(got, want):
			t.Fatalf("%d bytes differ from the %d decoding whole planes gives", len(got), len(want))
		}
		size, rest, err := storedLength(src[1:], MaxChunkSize)
		if err != nil {
			return
		}
		q := size / 4
		secs, ok := blockPlanes(rest, [4]int{q, q, q, size - 3*q})
		if !ok {
			return
		}
		got, gerr = decodeBlockPlanes(nil, size, secs)
		switch {
		case (gerr == nil) != (werr == nil):
			t.Fatalf("block by block: error %v, decoding whole planes gives %v", gerr, werr)
		case gerr == nil && !bytes.Equal(got, want):
			t.Fatalf("block by block: %d bytes differ from the %d decoding whole planes gives", len(got), len(want))
		}
	})
}

// blockPlanesFuzzForm returns the stored form 0x03 of n bytes of float32
// embeddings (kind 1), of floats with constant and few-valued planes (RLE
// and Huffman blocks, kind 2) or of text (kind 3), some planes stored raw
// as seed picks.
func blockPlanesFuzzForm(kind uint8, n int, seed uint64) []byte {
	var data []byte
	switch kind {
	case 1:
		data = genFloats(n, seed)
	case 2:
		data = genFloats(n, seed)
		r := rand.New(rand.NewPCG(seed, 7))
		for i := 0; i+3 < len(data); i += 4 {
			data[i+3] = 0x3f
			data[i+2] &= byte(r.IntN(2))
			if i%(1<<17) < 1<<16 {
				data[i+1] = 0 // an RLE block in plane 1's every other block, roughly
			}
		}
	default:
		data = genText(n, seed)
	}
	var ent [4]float64
	for k := range ent {
		if seed>>(8+k)&1 != 0 {
			ent[k] = randomPlaneEntropy // stored raw without trying
		}
	}
	return compressShuffled(nil, data, LevelFastest, ent, true, nil)
}

// TestBlockPlanesConcurrent: goroutines decoding form 0x03 block by block
// at once (as the mount's prefetch workers do) share only the pools (huff0
// Scratch, block buffers): each gets its own chunk's bytes, decoding into
// buffers that held another chunk's plaintext (run with -race).
func TestBlockPlanesConcurrent(t *testing.T) {
	var forms, plains [][]byte
	for i, n := range []int{3<<20 + 1, 1<<20 + 2, 600_003, 4 * huffBlockSize} {
		forms = append(forms, blockPlanesFuzzForm(uint8(1+i%3), n, uint64(i)))
		plains = append(plains, nil)
		var err error
		if plains[i], err = decodeWholeRef(forms[i]); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			var dst []byte
			for r := range 12 {
				k := (g + r) % len(forms)
				var err error
				if dst, err = Decompress(dst, forms[k]); err != nil || !bytes.Equal(dst, plains[k]) {
					errs <- fmt.Errorf("goroutine %d, round %d, form %d: %d bytes, %v", g, r, k, len(dst), err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
