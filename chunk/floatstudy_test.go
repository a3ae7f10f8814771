//go:build study

package chunk

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestFloatPathStudy: the chunks of plain files under $CHUNK_STUDY_DIR by
// the path compress takes (float-looking: the shuffled probe; text; other),
// with the bytes stored and one-thread CPU of that path against a plain
// zstd frame at the file's level (a study tool; skips without the variable).
func TestFloatPathStudy(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" {
		t.Skip("CHUNK_STUDY_DIR not set")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type acc struct {
		chunks, in, cur, plain, shuf, sPlain, sRaw int
		curCPU, plainCPU                           time.Duration
	}
	cls := map[string]*acc{}
	var dst []byte
	err := studyChunks(root, func(k fileKind) bool { return k == kindDefault }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			st := sampleStats(raw)
			name := "other"
			if st.ok && looksLikeFloat32(st.ent) {
				name = "float"
			} else if st.text == textYes || st.text == textUnknown && looksLikeText(raw) {
				name = "text"
			}
			a := cls[name]
			if a == nil {
				a = &acc{}
				cls[name] = a
			}
			a.chunks++
			a.in += len(raw)
			if name == "float" {
				switch shuffledSampleChoice(raw, level, st.ent, false) {
				case sampleShuffled:
					a.shuf++
				case samplePlain:
					a.sPlain++
				default:
					a.sRaw++
				}
			}
			// Plain first, then the current path: the first pass over a chunk
			// pays its cache misses (the study reads files, not the page
			// cache's copy a backup has just hashed).
			l, _ := level.resolve()
			t0 := threadCPU()
			c := encoder(l).EncodeAll(raw, dst[:0])
			a.plainCPU += threadCPU() - t0
			if pays(len(raw), len(c)+1) {
				a.plain += len(c) + 1
			} else {
				a.plain += len(raw)
			}
			t0 = threadCPU()
			out, ok := compressKind(c[:0], raw, level, kind, 0, nil)
			a.curCPU += threadCPU() - t0
			a.cur += len(out)
			if ok {
				c = out
			}
			dst = c
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for n, a := range cls {
		t.Logf("%-6s chunks %5d in %11d current %11d (%.4f) %.3fs plain %11d (%.4f) %.3fs; float probe: shuffled %d plain %d raw %d",
			n, a.chunks, a.in, a.cur, float64(a.cur)/float64(a.in), a.curCPU.Seconds(), a.plain, float64(a.plain)/float64(a.in), a.plainCPU.Seconds(), a.shuf, a.sPlain, a.sRaw)
	}
}

// TestRepeatStudy counts the chunks of $CHUNK_STUDY_DIR that no probe
// sample compresses, and of those the ones longRepeats sends to a full
// compression, with what that compression stores.
func TestRepeatStudy(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" {
		t.Skip("CHUNK_STUDY_DIR not set")
	}
	var noSample, noSampleBytes, rep, repBytes, repStored int
	err := studyChunks(root, func(k fileKind) bool { return true }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			if !probed(raw) {
				return nil
			}
			l, _ := level.resolve()
			for _, q := range [...]int{2, 1, 3} {
				off := ((len(raw) - probeWindow) * q / 4) &^ 3
				s := raw[off : off+probeWindow]
				if samplePaysOff(len(s), len(encoder(l).EncodeAll(s, nil))) {
					return nil
				}
			}
			noSample++
			noSampleBytes += len(raw)
			if longRepeats(raw) {
				rep++
				repBytes += len(raw)
				c := encoder(l).EncodeAll(raw, nil)
				repStored += min(len(c)+1, len(raw))
				t.Logf("repeat: %s %d -> %d", rel, len(raw), len(c)+1)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("no sample pays: %d chunks, %d bytes; long repeats: %d chunks, %d bytes, compressed %d", noSample, noSampleBytes, rep, repBytes, repStored)
}
