package chunk

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/restic/chunker"
)

func TestFileLevel(t *testing.T) {
	for _, c := range []struct {
		rel  string
		l    Level
		want Level
	}{
		{"spaces/a/wal/wal-0001.log", LevelDefault, LevelDefault},
		{"spaces/a/cold/seg-000001.col", LevelFastest, LevelFastest},
		{"spaces/a/warm/warm_tier.dat", LevelDefault, LevelDefault},
		{"spaces/a/hot/memtable.bin", LevelDefault, LevelBalanced},
		{"tmp/gosrc/image/testdata/video-001.png", LevelFastest, LevelBalanced},
		{"go/src/x.go", LevelNone, LevelNone},
		{"go/src/x.go", LevelBetter, LevelBetter},
	} {
		if got := FileLevel(c.rel, c.l); got != c.want {
			t.Errorf("FileLevel(%q, %v) = %v, want %v", c.rel, c.l, got, c.want)
		}
	}
}

// TestSplitFileCompressesAtFileLevel: a binary chunk of a file that is not
// one of Engram's tier files is stored as Compress stores it at
// LevelBalanced, the same bytes in a WAL segment as at the pipeline's level.
func TestSplitFileCompressesAtFileLevel(t *testing.T) {
	data := genBinary(300_000)
	p := NewPipeline(2, LevelDefault)
	defer p.Close()
	for _, c := range []struct {
		rel  string
		want Level
	}{{"hot/memtable.bin", LevelBalanced}, {"wal/wal-01.log", LevelFastest}} {
		got := splitStored(t, p, data, c.rel, ParamsDefault)
		want, ok := Compress(nil, data, c.want)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("%s: stored %d bytes, want Compress at %v (%d bytes)", c.rel, len(got), c.want, len(want))
		}
	}
	if a, b := mustCompress(t, data, LevelBalanced), mustCompress(t, data, LevelFastest); len(a) >= len(b) {
		t.Errorf("binary data: balanced %d bytes, fastest %d: the test data does not tell the levels apart", len(a), len(b))
	}
}

// splitStored runs data, one chunk with params, through p.SplitFile as the
// file rel and returns the chunk's stored form.
func splitStored(t *testing.T, p *Pipeline, data []byte, rel string, params Params) []byte {
	t.Helper()
	var mu sync.Mutex
	var got []byte
	_, _, _, err := p.SplitFile(context.Background(), bytes.NewReader(data), rel, chunker.Pol(0x3DA3358B4DC173), params, Key{}, nil, func(ch *Chunk) error {
		mu.Lock()
		defer mu.Unlock()
		got = bytes.Clone(ch.Stored)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustCompress(t *testing.T, b []byte, l Level) []byte {
	c, ok := Compress(nil, b, l)
	if !ok {
		t.Fatalf("%v: did not compress", l)
	}
	return c
}

// genBinary is compressible bytes that are not text, like an object file:
// records of a few hundred kinds, each a run of random bytes, with a counter
// and a control byte between them.
func genBinary(n int) []byte {
	x := uint64(7)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	kinds := make([][]byte, 300)
	for k := range kinds {
		kinds[k] = make([]byte, 6+next()%40)
		for i := range kinds[k] {
			kinds[k][i] = byte(next())
		}
	}
	b := make([]byte, 0, n+64)
	for i := 0; len(b) < n; i++ {
		k := kinds[next()%uint64(len(kinds))]
		b = append(b, 0x01, byte(i), byte(i>>8))
		b = append(b, k...)
	}
	return b[:n]
}

// TestSamplePaysLooksBeyondTheMiddle: a chunk that compresses well but for
// a random table in its middle (an object file) is compressed, not stored
// raw because its middle sample is incompressible; random bytes throughout
// are still stored raw.
func TestSamplePaysLooksBeyondTheMiddle(t *testing.T) {
	data := genBinary(1 << 20)
	rnd := genRandom(64<<10, 3)
	copy(data[len(data)/2-32<<10:], rnd)
	c, ok := Compress(nil, data, LevelFastest)
	if !ok || len(c) > len(data)*3/4 {
		t.Fatalf("compressible chunk with a random middle: compressed %v, %d of %d bytes", ok, len(c), len(data))
	}
	if _, ok := Compress(nil, genRandom(1<<20, 4), LevelFastest); ok {
		t.Fatal("random bytes compressed")
	}
}

func genRandom(n int, seed uint64) []byte {
	x := seed*0x9e3779b97f4a7c15 + 1
	b := make([]byte, n)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	return b
}
