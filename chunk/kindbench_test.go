//go:build study

package chunk

import (
	"os"
	"runtime"
	"testing"
)

// BenchmarkKindChunks compresses the chunks of one kind ($CHUNK_STUDY_KIND)
// under $CHUNK_STUDY_DIR (the first 128 MiB of them, held in memory) as a
// backup does, b.N times over: for CPU profiles of one kind's compression.
func BenchmarkKindChunks(b *testing.B) {
	root, only := os.Getenv("CHUNK_STUDY_DIR"), os.Getenv("CHUNK_STUDY_KIND")
	if root == "" || only == "" {
		b.Skip("CHUNK_STUDY_DIR or CHUNK_STUDY_KIND not set")
	}
	names := map[fileKind]string{kindDefault: "other", kindWAL: "wal", kindCold: "cold", kindWarm: "warm"}
	type ch struct {
		raw   []byte
		level Level
		kind  fileKind
	}
	var chunks []ch
	total := 0
	_ = studyChunks(root, func(k fileKind) bool { return names[k] == only && total < 128<<20 }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			chunks = append(chunks, ch{append([]byte(nil), raw...), level, kind})
			total += len(raw)
			return nil
		})
	dst := make([]byte, 0, 16<<20)
	b.SetBytes(int64(total))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	t0 := threadCPU()
	for range b.N {
		for _, c := range chunks {
			compressKind(dst[:0], c.raw, c.level, c.kind, formsHuff|formsWALRecords, nil)
		}
	}
	b.ReportMetric((threadCPU()-t0).Seconds()/float64(b.N), "cpu-s/op")
}
