package chunk

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json")

// goldenInput is 5 MiB whose bytes are fixed by the BLAKE3 specification
// (the XOF output of a constant string), followed by a repetitive text tail,
// so the golden file does not depend on any generator in this package.
func goldenInput() []byte {
	d := blake3.New()
	d.WriteString("memento golden chunk input v1")
	out := make([]byte, 5<<20)
	_, _ = d.Digest().Read(out)
	return append(out, bytes.Repeat([]byte("memento keeps every byte. "), 40000)...)
}

type goldenChunk struct {
	Offset int64 `json:"offset"`
	Length int   `json:"length"`
	ID     ID    `json:"id"`
}

type goldenSet struct {
	Params Params        `json:"params"`
	Sum    string        `json:"sum"`
	Chunks []goldenChunk `json:"chunks"`
}

// TestGolden pins chunk boundaries and IDs for a fixed polynomial, key and
// input. They are part of the repository format: if this test fails, a change
// altered which chunks existing repositories contain, which must never happen
// silently. Regenerate only for a deliberate format change: go test -run
// Golden -update.
func TestGolden(t *testing.T) {
	input := goldenInput()
	key := DeriveKey([32]byte{0: 'm', 31: 'o'}, "golden")
	sets := map[string]Params{
		"wal":     ParamsWAL,
		"cold":    ParamsCold,
		"warm":    ParamsWarm,
		"default": ParamsDefault,
		"small":   {Min: 16 << 10, Max: 256 << 10, AverageBits: 16},
		// Set 1 stays pinned: repositories created with it keep using it.
		"set1-wal":  ParamSet1.For("wal/wal-0000000000000001.log"),
		"set1-cold": ParamSet1.For("cold/seg-000001.col"),
		"set2-wal":  ParamSet2.For("wal/wal-0000000000000001.log"),
		// Sets 1 and 2 share 16 KiB warm chunks.
		"set2-warm": ParamSet2.For("warm/warm_tier.dat"),
	}
	p := NewPipeline(2, LevelFastest)
	defer p.Close()
	got := map[string]goldenSet{}
	for name, params := range sets {
		var chunks []goldenChunk
		store := func(c *Chunk) error { return nil }
		ids, sum, _, err := p.Split(context.Background(), bytes.NewReader(input), testPol, params, key, nil, store)
		if err != nil {
			t.Fatal(err)
		}
		lens := boundaries(t, input, testPol, params)
		var off int64
		for i, id := range ids {
			chunks = append(chunks, goldenChunk{Offset: off, Length: lens[i], ID: id})
			off += int64(lens[i])
		}
		if name != "small" && name != "default" && len(chunks) > 8 {
			chunks = append(chunks[:4], chunks[len(chunks)-4:]...) // keep the file short
		}
		got[name] = goldenSet{Params: params, Sum: fmt.Sprintf("%x", sum), Chunks: chunks}
	}
	gotJSON, err := json.MarshalIndent(got, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden.json")
	if *update {
		if err := os.WriteFile(path, append(gotJSON, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update once to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), gotJSON) {
		t.Fatalf("chunk boundaries or IDs changed against %s: this breaks dedup against every existing repository", path)
	}
}
