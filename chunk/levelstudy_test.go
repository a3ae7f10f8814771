//go:build study

package chunk

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestLevelStudy: for every chunk of a plain file (kind default, stored at
// LevelBalanced) under $CHUNK_STUDY_DIR, the stored size and one-thread CPU
// of the level choices a first backup could make, and of policies that
// choose per chunk from the probe's middle sample (docs/benchmarks.md,
// "Issue 18, session 23: repeats beyond the probe's sample"). A study tool,
// not a test: it skips without the variable. The current path is measured
// first, on a chunk not yet in the caches: its CPU (and the sample-chosen
// policies', which reuse it) reads about 15 % high on usrlib; compare the
// other encoders among themselves (TestFloatPathStudy measures plain first).
//
//	CHUNK_STUDY_DIR=/work/wt/data/usrlib go test -tags study -run TestLevelStudy -v ./chunk/
func TestLevelStudy(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" {
		t.Skip("CHUNK_STUDY_DIR not set")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	noAll, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithLowerEncoderMem(true),
		zstd.WithAllLitEntropyCompression(false))
	if err != nil {
		t.Fatal(err)
	}
	fastNoAll, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithLowerEncoderMem(true),
		zstd.WithAllLitEntropyCompression(false))
	type pol struct {
		stored int
		cpu    time.Duration
	}
	// policies: 0 current (compress as today), 1 balanced without all-literal
	// entropy, 2 fastest, 3 fastest without all-literal entropy,
	// 4.. sample-chosen fastest when its sample is within t % of balanced's.
	tol := []int{1, 2, 3, 5}
	pols := make([]pol, 4+len(tol)+2)
	in, chunks, rawChunks := 0, 0, 0
	var dst []byte
	stored := func(n, m int) int {
		if pays(n, m) {
			return m
		}
		return n
	}
	err = studyChunks(root, func(k fileKind) bool { return k == kindDefault }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			in += len(raw)
			chunks++
			t0 := threadCPU()
			out, ok := compressKind(dst[:0], raw, level, kind, 0, nil)
			t1 := threadCPU()
			curCPU := t1 - t0
			pols[0].stored += len(out)
			pols[0].cpu += t1 - t0
			if ok {
				dst = out
			} else {
				rawChunks++
			}
			// The others compress what the current code compresses (the probe
			// and text rule unchanged), with another encoder.
			probeCPU := time.Duration(0)
			if !ok && len(raw) >= minCompressSize {
				// Stored raw: the probe's cost only, the same for every policy.
				for i := 1; i < len(pols); i++ {
					pols[i].stored += len(raw)
					pols[i].cpu += t1 - t0
				}
				return nil
			}
			if len(raw) < minCompressSize {
				for i := 1; i < len(pols); i++ {
					pols[i].stored += len(raw)
				}
				return nil
			}
			t0 = threadCPU()
			probed(raw)
			if probed(raw) && looksLikeText(raw) == false {
				samplePays(raw, LevelBalanced)
			}
			probeCPU = threadCPU() - t0
			var fastCPU time.Duration
			one := func(i int, enc func([]byte, []byte) []byte) (int, time.Duration) {
				t0 := threadCPU()
				c := enc(raw, dst[:0])
				d := threadCPU() - t0
				dst = c
				pols[i].stored += stored(len(raw), len(c)+1)
				pols[i].cpu += d + probeCPU
				return len(c), d
			}
			bal, _ := one(len(pols)-1, encoder(LevelBalanced).EncodeAll)
			one(1, noAll.EncodeAll)
			fast, fastCPU := one(2, encoder(LevelFastest).EncodeAll)
			one(3, fastNoAll.EncodeAll)
			if fast*100 <= bal*102 {
				pols[4+len(tol)].stored += stored(len(raw), fast+1)
			} else {
				pols[4+len(tol)].stored += stored(len(raw), bal+1)
			}
			// Sample-chosen: compress the middle sample at both levels.
			s := probeSample(raw, probeWindow)
			t2 := threadCPU()
			sf := len(encoder(LevelFastest).EncodeAll(s, nil))
			sb := len(encoder(LevelBalanced).EncodeAll(s, nil))
			sc := threadCPU() - t2
			for j, tt := range tol {
				i := 4 + j
				if sf*100 <= sb*(100+tt) {
					pols[i].stored += stored(len(raw), fast+1)
					pols[i].cpu += sc + fastCPU + probeCPU
				} else {
					pols[i].stored += len(out)
					pols[i].cpu += sc + curCPU
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"current", "bal-noAllLit", "fastest", "fastest-noAllLit"}
	for _, tt := range tol {
		names = append(names, "sample-fastest-within-"+string(rune('0'+tt))+"%")
	}
	names = append(names, "oracle-fastest-within-2%(bytes only)", "plain-balanced")
	t.Logf("chunks %d (raw %d) in %d", chunks, rawChunks, in)
	for i, p := range pols {
		t.Logf("%-40s stored %11d (%.4f, %+.2f %% vs current) cpu %.3fs", names[i], p.stored, float64(p.stored)/float64(in),
			100*(float64(p.stored)/float64(pols[0].stored)-1), p.cpu.Seconds())
	}
}
