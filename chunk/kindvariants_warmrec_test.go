//go:build study

package chunk

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestWarmRecChunks compares, chunk by chunk, the warm page file's stored
// form without 0x04 (today's: formsHuff) and with it (formsHuff |
// formsWALRecords) under $CHUNK_STUDY_DIR: stored bytes, thread CPU of
// encoding and decoding (interleaved), and how many chunks 0x04's choice
// stores larger than today's and by how much in all. A study tool: skips
// without the variable.
func TestWarmRecChunks(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" {
		t.Skip("CHUNK_STUDY_DIR not set")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fset := [2]forms{formsHuff, formsHuff | formsWALRecords}
	var in, chunks, forms04, worse, worseBytes, better int
	var stored [2]int
	var enc, dec [2]time.Duration
	var dst [2][]byte
	var plain []byte
	err := studyChunks(root, func(k fileKind) bool { return k == kindWarm }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			in += len(raw)
			chunks++
			var size [2]int
			for i := range fset {
				t0 := threadCPU()
				out, ok := compressKind(dst[i][:0], raw, level, kindWarm, fset[i], nil)
				enc[i] += threadCPU() - t0
				size[i] = len(out)
				stored[i] += len(out)
				if ok {
					if i == 1 && out[0] == formatWALRecords {
						forms04++
					}
					t0 = threadCPU()
					var err error
					plain, err = Decompress(plain[:0], out)
					dec[i] += threadCPU() - t0
					if err != nil || string(plain) != string(raw) {
						t.Fatalf("%s: chunk %d: round trip: %v", rel, chunks, err)
					}
					if cap(out) > cap(dst[i]) {
						dst[i] = out[:0]
					}
				}
			}
			if size[1] > size[0] {
				worse++
				worseBytes += size[1] - size[0]
			} else if size[1] < size[0] {
				better++
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"current", "warmrec04"} {
		t.Logf("warm %-10s in %11d stored %11d (%.4f) enc %.3fs dec %.3fs", name, in, stored[i], float64(stored[i])/float64(in), enc[i].Seconds(), dec[i].Seconds())
	}
	t.Logf("chunks %d: 0x04 %d, smaller %d, larger %d (by %d bytes in all)", chunks, forms04, better, worse, worseBytes)
}
