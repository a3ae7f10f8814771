package main

import (
	"context"
	"io"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkGenerate measures generate's throughput in MB/s of data dir
// written (3 spaces, 768-dim, all cores). Reproduce with
//
//	go test -run '^$' -bench Generate -benchtime 3x ./cmd/engram-sim/
func BenchmarkGenerate(b *testing.B) {
	const size = 256 << 20
	m, _ := parseMix("store=60,update=30,delete=10")
	b.SetBytes(size)
	for i := range b.N {
		dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
		err := generate(context.Background(), generateOpts{dir: dir, size: size, ids: defaultSpaceIDs(3), seed: 1,
			dim: 768, segSize: 64 << 20, mix: m, sameTS: 0.05, tsStep: 5 * time.Millisecond,
			workers: runtime.GOMAXPROCS(0), out: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
	}
}
