//go:build study

package chunk

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time of the calling OS thread (the caller locks it).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// TestKindStudy chunks every file under $CHUNK_STUDY_DIR as a backup cuts it
// and reports, per kind of file, the bytes in, the bytes stored and the CPU
// of compressing and of decompressing them on one thread. A study tool, not
// a test: it skips without the variable.
//
//	CHUNK_STUDY_DIR=/work/wt/data/def go test -run TestKindStudy -v ./chunk/
func TestKindStudy(t *testing.T) {
	root := os.Getenv("CHUNK_STUDY_DIR")
	if root == "" {
		t.Skip("CHUNK_STUDY_DIR not set")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type acc struct {
		in, stored, chunks int
		enc, dec           time.Duration
	}
	kinds := map[fileKind]*acc{}
	names := map[fileKind]string{kindDefault: "other", kindWAL: "wal", kindCold: "cold", kindWarm: "warm"}
	var dst, plain []byte
	shapes := map[string]*shapeAcc{}
	only := os.Getenv("CHUNK_STUDY_KIND")
	err := studyChunks(root, func(k fileKind) bool { return only == "" || only == names[k] }, nil,
		func(rel string, level Level, kind fileKind, raw []byte) error {
			a := kinds[kind]
			if a == nil {
				a = &acc{}
				kinds[kind] = a
			}
			t0 := threadCPU()
			out, ok := compressKind(dst[:0], raw, level, kind, formsHuff, nil)
			t1 := threadCPU()
			a.enc += t1 - t0
			a.in += len(raw)
			a.stored += len(out)
			a.chunks++
			f, kk, _ := storedShape(out, ok)
			key := fmt.Sprintf("%s/%s/%v", names[kind], f, kk)
			if shapes[key] == nil {
				shapes[key] = &shapeAcc{}
			}
			shapes[key].chunks++
			shapes[key].in += len(raw)
			shapes[key].stored += len(out)
			if ok {
				dst = out
				t0 = threadCPU()
				var err error
				plain, err = Decompress(plain[:0], out)
				a.dec += threadCPU() - t0
				if err != nil || string(plain) != string(raw) {
					t.Fatalf("%s: round trip: %v", rel, err)
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + shapeReport(shapes))
	var tot acc
	for k, a := range kinds {
		t.Logf("%-6s chunks %6d in %11d stored %11d (%.4f) enc %.3fs dec %.3fs", names[k], a.chunks, a.in, a.stored,
			float64(a.stored)/float64(a.in), a.enc.Seconds(), a.dec.Seconds())
		tot.in += a.in
		tot.stored += a.stored
		tot.enc += a.enc
		tot.dec += a.dec
		tot.chunks += a.chunks
	}
	t.Logf("%-6s chunks %6d in %11d stored %11d (%.4f) enc %.3fs dec %.3fs", "all", tot.chunks, tot.in, tot.stored,
		float64(tot.stored)/float64(tot.in), tot.enc.Seconds(), tot.dec.Seconds())
}
