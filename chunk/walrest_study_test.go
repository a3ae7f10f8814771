//go:build study

package chunk

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestWALRestStudy: the rest sections (record headers and text) of the WAL
// chunks under $CHUNK_STUDY_DIR, compressed by several zstd settings.
func TestWALRestStudy(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" {
		t.Skip("CHUNK_STUDY_DIR not set")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mk := func(opts ...zstd.EOption) *zstd.Encoder {
		base := []zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithLowerEncoderMem(true)}
		e, err := zstd.NewWriter(nil, append(base, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	type setting struct {
		name string
		enc  *zstd.Encoder
	}
	sets := []setting{
		{"fastest+alllit", mk(zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true))},
		{"fastest", mk(zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(false))},
		{"fastest-rawlit", mk(zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithNoEntropyCompression(true))},
		{"default+alllit", mk(zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithAllLitEntropyCompression(true))},
		{"fastest+alllit-w64k", mk(zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(true), zstd.WithWindowSize(64<<10), zstd.WithSingleSegment(false))},
	}
	only := os.Getenv("CHUNK_STUDY_SETS")
	sizes := make([]int, len(sets))
	cpus := make([]time.Duration, len(sets))
	var in, chunks, text, restIn int
	var cur int
	var curCPU time.Duration
	var dst []byte
	err := studyChunks(root, func(k fileKind) bool { return k == kindWAL }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			runs, words := walRuns(nil, raw)
			if words == 0 || 4*words*walMinFloatShare < len(raw) {
				return nil
			}
			chunks++
			in += len(raw)
			var rest []byte
			pos := 0
			for _, r := range runs {
				rest = append(rest, raw[pos:pos+r.gap]...)
				pos += r.gap + 4*r.words
			}
			rest = append(rest, raw[pos:]...)
			restIn += len(rest)
			l, _ := level.resolve()
			if textLevel(l, rest, textUnknown) != l {
				text++
			}
			t0 := threadCPU()
			dst = appendZstdSection(dst[:0], rest, encoder(textLevel(l, rest, textUnknown)))
			curCPU += threadCPU() - t0
			cur += len(dst)
			for i, s := range sets {
				if only != "" && !strings.Contains(only, s.name) {
					continue
				}
				t0 := threadCPU()
				c := s.enc.EncodeAll(rest, dst[:0])
				cpus[i] += threadCPU() - t0
				sizes[i] += min(len(c), len(rest))
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chunks %d (text-level %d) in %d rest %d (%.3f); current %d %.3fs", chunks, text, in, restIn, float64(restIn)/float64(in), cur, curCPU.Seconds())
	for i, s := range sets {
		t.Logf("%-22s %10d (%.4f of rest, %+d vs current) %.3fs", s.name, sizes[i], float64(sizes[i])/float64(restIn), sizes[i]-cur, cpus[i].Seconds())
	}
}
