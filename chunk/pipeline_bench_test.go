package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"
)

// BenchmarkChunker measures content-defined chunking alone (no hashing).
//
//	go test -run '^$' -bench 'Chunker$' ./chunk/
func BenchmarkChunker(b *testing.B) {
	data := genMixed(64<<20, 1)
	for _, c := range []struct {
		name string
		p    Params
	}{{"default", ParamsDefault}, {"wal", ParamsWAL}, {"warm-fixed32K", ParamsWarm}, {"cdc-16K", Params{Min: 4 << 10, Max: 128 << 10, AverageBits: 14}}} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, c.p.Max)
			b.SetBytes(int64(len(data)))
			m := startCPU()
			for b.Loop() {
				ch, err := NewChunker(bytes.NewReader(data), testPol, c.p)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := ch.Next(buf); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
				ch.Release()
			}
			m.report(b, int64(len(data)))
		})
	}
}

// BenchmarkKeySum measures chunk-ID hashing (keyed BLAKE3) per chunk size,
// and the plain whole-stream BLAKE3 Split computes alongside (Hasher; with
// AVX-512 both go sixteen chunks at a time, blake3wide.go).
//
//	go test -run '^$' -bench KeySum ./chunk/
func BenchmarkKeySum(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		data := genFloats(size, 1)
		b.Run(fmt.Sprintf("keyed-%dK", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				testKey.Sum(data)
			}
		})
	}
	data := genFloats(1<<20, 1)
	b.Run("stream-1M-writes", func(b *testing.B) {
		var h Hasher
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			_, _ = h.Write(data)
		}
		h.Reset()
	})
	// The same with github.com/zeebo/blake3 (the hasher without AVX-512).
	b.Run("stream-1M-writes-zeebo", func(b *testing.B) {
		h := blake3.New()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			h.Write(data)
		}
	})
}

// BenchmarkSplit measures the whole pipeline (read, chunk, stream digest,
// keyed hash, compress, store callback) on 2 workers over 64 MiB of mixed
// WAL records, embeddings and text. "new" stores every chunk; "known" has
// every chunk already in the repository (the unchanged second backup).
//
//	go test -run '^$' -bench 'Split$' -benchtime 5x ./chunk/
func BenchmarkSplit(b *testing.B) {
	data := genMixed(64<<20, 1)
	warm := genFloats(64<<20, 2)
	cases := []struct {
		name   string
		data   []byte
		params Params
		known  bool
		level  Level
	}{
		{"mixed/default/new", data, ParamsDefault, false, LevelDefault},
		{"mixed/default/new/none", data, ParamsDefault, false, LevelNone},
		{"mixed/default/new/balanced", data, ParamsDefault, false, LevelBalanced},
		{"mixed/default/known", data, ParamsDefault, true, LevelDefault},
		{"floats/warm/new", warm, ParamsWarm, false, LevelDefault},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := NewPipeline(2, c.level)
			defer p.Close()
			known := func(ID) bool { return c.known }
			store := func(*Chunk) error { return nil }
			b.SetBytes(int64(len(c.data)))
			m := startCPU()
			for b.Loop() {
				if _, _, _, err := p.Split(context.Background(), bytes.NewReader(c.data), testPol, c.params, testKey, known, store); err != nil {
					b.Fatal(err)
				}
			}
			m.report(b, int64(len(c.data)))
		})
	}
}

// BenchmarkChunkerSmallFiles measures chunking many short streams (a source
// tree's files, 11 KiB on average in Go's src/) with the default params:
// per-stream overhead, not the rolling hash.
//
//	go test -run '^$' -bench ChunkerSmallFiles ./chunk/
func BenchmarkChunkerSmallFiles(b *testing.B) {
	data := genMixed(11<<10, 1)
	buf := make([]byte, ParamsDefault.Max)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		ch, err := NewChunker(bytes.NewReader(data), testPol, ParamsDefault)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := ch.Next(buf); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		ch.Release()
	}
}

// BenchmarkSplitUnderGC measures the pipeline on cold-segment chunks (2-8
// MiB) while the garbage collector runs every 4 chunks, as it does in a
// backup under the 200 MiB soft memory limit, two Splits at once:
// "freelist" is the pipeline
// as built (its big buffers kept in bufList), "pools" the sync.Pools alone,
// which every collection empties (each buffer then allocated and zeroed
// again). Compare B/op and cpu-s.
//
//	go test -run '^$' -bench SplitUnderGC -benchmem -benchtime 5x ./chunk/
func BenchmarkSplitUnderGC(b *testing.B) {
	data := genMixed(64<<20, 1)
	for _, pools := range []bool{false, true} {
		name := "freelist"
		if pools {
			name = "pools"
		}
		b.Run(name, func(b *testing.B) {
			p := NewPipeline(2, LevelDefault)
			defer p.Close()
			if pools {
				p.bufs = nil
			}
			var n atomic.Int64
			store := func(*Chunk) error {
				if n.Add(1)%4 == 0 {
					runtime.GC()
				}
				return nil
			}
			b.SetBytes(2 * int64(len(data)))
			m := startCPU()
			for b.Loop() {
				// Two files at once, as the spaces of a backup overlap.
				var g errgroup.Group
				for range 2 {
					g.Go(func() error {
						_, _, _, err := p.Split(context.Background(), bytes.NewReader(data), testPol, ParamsCold, testKey, nil, store)
						return err
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			m.report(b, 2*int64(len(data)))
		})
	}
}
