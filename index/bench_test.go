package index

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"memento/chunk"
)

const (
	benchBlobs      = 1_000_000
	benchBatch      = 10_000
	benchPerFile    = 10_000 // blobs per repository index file (~10 packs of 1000)
	benchPackBlobs  = 1_000
	benchSpace      = "bench"
	benchOtherSpace = "other"
)

var (
	benchOnce sync.Once
	benchDir  string
	benchIx   *Index
	benchErr  error

	addFileSeq atomic.Uint64
)

// benchIndex builds, once per test binary run, a cache of 1,000,000 blobs
// in one space plus 100,000 in another (so the lookups have a neighbour).
func benchIndex(b *testing.B) *Index { return benchIndexT(b) }

func benchIndexT(b testing.TB) *Index {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "memento-index-bench-")
		if benchErr != nil {
			return
		}
		benchIx, benchErr = Open(filepath.Join(benchDir, "index.db"))
		if benchErr != nil {
			return
		}
		for f := 0; f < benchBlobs/benchPerFile; f++ {
			packs := makePacks(benchSpace, uint64(f), benchPerFile/benchPackBlobs, benchPackBlobs)
			if benchErr = benchIx.AddFile(fmt.Sprintf("index/%04d", f), packs); benchErr != nil {
				return
			}
		}
		for f := 0; f < 10; f++ {
			packs := makePacks(benchOtherSpace, uint64(1000+f), benchPerFile/benchPackBlobs, benchPackBlobs)
			if benchErr = benchIx.AddFile(fmt.Sprintf("index/o%04d", f), packs); benchErr != nil {
				return
			}
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchIx
}

func cleanupBench() {
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
}

// BenchmarkLookup resolves batches of 10,000 IDs (half present, half not,
// like a backup's dedup of partly changed data) in a cache of 1,000,000
// blobs, including the open/close every call pays. Reports ids/s.
func BenchmarkLookup(b *testing.B) {
	ix := benchIndex(b)
	batches := make([][]chunk.ID, 16)
	for i := range batches {
		for j := range benchBatch {
			if j%2 == 0 {
				// A present ID: file f, blob k of that file's seeds.
				n := uint64(i*benchBatch + j)
				f := (n * 7919) % (benchBlobs / benchPerFile)
				k := (n * 104729) % benchPerFile
				batches[i] = append(batches[i], blobID(f, k))
			} else {
				batches[i] = append(batches[i], blobID(1<<40+uint64(i), uint64(j)))
			}
		}
	}
	b.ResetTimer()
	found := 0
	for i := 0; b.Loop(); i++ {
		got, err := ix.Lookup(benchSpace, batches[i%len(batches)])
		if err != nil {
			b.Fatal(err)
		}
		found += len(got)
	}
	b.StopTimer()
	if found == 0 {
		b.Fatal("nothing found")
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "ids/s")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/batch")
}

// BenchmarkSpaceIDs loads all 1,000,000 IDs of a space, what a backup does
// once at start.
func BenchmarkSpaceIDs(b *testing.B) {
	ix := benchIndex(b)
	b.ResetTimer()
	for b.Loop() {
		ids, err := ix.SpaceIDs(benchSpace)
		if err != nil {
			b.Fatal(err)
		}
		if len(ids) != benchBlobs {
			b.Fatalf("%d ids", len(ids))
		}
	}
	b.ReportMetric(float64(b.N*benchBlobs)/b.Elapsed().Seconds(), "ids/s")
}

// BenchmarkAddFile merges index files of 10,000 blobs (10 packs) into a
// cache that already holds 1,000,000, each in its own transaction with
// fsync, as a backup does when it writes an index file. Reports blobs/s.
func BenchmarkAddFile(b *testing.B) {
	ix := benchIndex(b)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		n := addFileSeq.Add(1) // unique across -count runs: a loaded name would be a no-op
		packs := makePacks(benchSpace, 1<<32+n, benchPerFile/benchPackBlobs, benchPackBlobs)
		name := fmt.Sprintf("index/add-%d", n)
		b.StartTimer()
		if err := ix.AddFile(name, packs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchPerFile)/b.Elapsed().Seconds(), "blobs/s")
}

// BenchmarkAddFilesNewCache merges index files of n blobs in all (files of
// 100,000, as a backup writes them) into a new cache: a first backup, or a
// new host's first command (docs/benchmarks.md, "Issue 18, session 23").
func BenchmarkAddFilesNewCache(b *testing.B) {
	for _, n := range []int{12_600, 60_000, 490_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var files []File
			for f := 0; f*100_000 < n; f++ {
				k := min(100_000, n-f*100_000)
				files = append(files, File{Name: fmt.Sprintf("index/%04d", f), Packs: makePacks(benchSpace, uint64(f), k/100, 100)})
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				ix, err := Open(filepath.Join(b.TempDir(), fmt.Sprint(i), "index.db"))
				if err != nil {
					b.Fatal(err)
				}
				if err := ix.AddFiles(files); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
