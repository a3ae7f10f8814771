package chunk

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestLooksRandomSmall: random bytes of every length from minCompressSize
// to smallRandomMax (three seeds each) look random, and Compress stores
// every one of them raw, so storing them raw without trying loses nothing;
// texts, source code, JSON with hex IDs, hex and base64 of random bytes,
// and a binary of few byte values do not (a run of 64 distinct
// characters does, and compresses no better than random bytes); nothing shorter or longer is
// judged.
func TestLooksRandomSmall(t *testing.T) {
	for n := minCompressSize; n <= smallRandomMax; n++ {
		for seed := range uint64(3) {
			p := genRandom(n, uint64(n)*7+seed)
			if !looksRandomSmall(p) {
				t.Fatalf("%d random bytes (seed %d) do not look random", n, seed)
			}
			if _, c := Compress(nil, p, LevelDefault); c {
				t.Fatalf("%d random bytes (seed %d) compressed", n, seed)
			}
		}
	}
	if got := randomDistinct[64]; got != 46 {
		t.Fatalf("randomDistinct[64] = %d, want 46", got)
	}
	if got := randomDistinct[256]; got != 130 {
		t.Fatalf("randomDistinct[256] = %d, want 130", got)
	}
	ids := make([]string, 8)
	for i := range ids {
		ids[i] = hex.EncodeToString(genRandom(32, uint64(i+100)))
	}
	js, _ := json.Marshal(map[string]any{"content": ids, "mtime_ns": 1796696280928817632, "name": "f50862.txt"})
	counting := make([]byte, 300)
	for i := range counting {
		counting[i] = byte(i % 40)
	}
	notRandom := map[string][]byte{
		"text":       genText(1024, 5),
		"source":     []byte(strings.Repeat("func (a *archiver) storeGroup(g *fileGroup) error {\n\treturn nil\n}\n", 16)),
		"json":       js,
		"hex":        []byte(hex.EncodeToString(genRandom(512, 9))),
		"base64":     []byte(base64.StdEncoding.EncodeToString(genRandom(700, 11))),
		"few values": counting,
	}
	for name, p := range notRandom {
		for _, n := range []int{minCompressSize, 100, 200, smallRandomMax} {
			if n > len(p) {
				continue
			}
			if looksRandomSmall(p[:n]) {
				t.Errorf("%s, %d bytes, looks random", name, n)
			}
		}
	}
	for _, n := range []int{0, 1, minCompressSize - 1, smallRandomMax + 1, 1024} {
		if looksRandomSmall(genRandom(n, 3)[:n]) {
			t.Errorf("%d random bytes judged: only %d to %d are", n, minCompressSize, smallRandomMax)
		}
	}
}

// TestSplitSmallGroupedRandomAlone: a small file of random bytes is not
// offered to the group hook and is stored alone, raw, with its chunk ID
// and BLAKE3; a text file of the same size is offered and, taken, not
// stored; random bytes past smallRandomMax are offered too.
func TestSplitSmallGroupedRandomAlone(t *testing.T) {
	p := NewPipeline(1, LevelDefault)
	defer p.Close()
	for _, tc := range []struct {
		data    []byte
		grouped bool
	}{
		{genRandom(64, 1), false},
		{genRandom(150, 2), false},
		{genRandom(smallRandomMax, 3), false},
		{genRandom(smallRandomMax+1, 4), true},
		{genText(150, 5), true},
	} {
		name := fmt.Sprintf("%d bytes, grouped %v", len(tc.data), tc.grouped)
		m := newMemStore()
		var offered [][]byte
		group := func(id ID, data []byte) (bool, error) {
			offered = append(offered, bytes.Clone(data))
			return true, nil
		}
		ids, sum, err := p.SplitSmallGrouped(tc.data, nil, "d/f.txt", ParamsDefault, testKey, nil, group, m.store)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(ids) != 1 || ids[0] != testKey.Sum(tc.data) || sum != Sum256(tc.data) {
			t.Fatalf("%s: ids %v, sum %x", name, ids, sum)
		}
		if tc.grouped {
			if len(offered) != 1 || !bytes.Equal(offered[0], tc.data) || m.calls.Load() != 0 {
				t.Fatalf("%s: offered %d, stored %d", name, len(offered), m.calls.Load())
			}
			continue
		}
		if len(offered) != 0 || m.calls.Load() != 1 {
			t.Fatalf("%s: offered %d, stored %d", name, len(offered), m.calls.Load())
		}
		if m.comp[ids[0]] || !bytes.Equal(m.stored[ids[0]], tc.data) || !bytes.Equal(m.chunks[ids[0]], tc.data) {
			t.Fatalf("%s: stored compressed %v, %d bytes, want raw", name, m.comp[ids[0]], len(m.stored[ids[0]]))
		}
	}
}
