//go:build study

package chunk

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// studyChunks cuts every regular file under root whose kind want accepts
// as a backup does (polynomial testPol, the file's parameters) and calls
// chunk with each chunk, the file's relative path, level and kind;
// newFile runs before each file's first chunk (nil: nothing).
func studyChunks(root string, want func(fileKind) bool, newFile func(), chunk func(rel string, level Level, kind fileKind, raw []byte) error) error {
	buf := make([]byte, 16<<20)
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		level, kind := FileLevel(rel, LevelDefault), kindOf(rel)
		if !want(kind) {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		c, err := NewChunker(f, testPol, ParamsFor(rel))
		if err != nil {
			return err
		}
		defer c.Release()
		if newFile != nil {
			newFile()
		}
		for {
			raw, err := c.Next(buf)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := chunk(rel, level, kind, raw); err != nil {
				return err
			}
		}
	})
}

// TestKindVariants compresses the chunks of one kind ($CHUNK_STUDY_KIND)
// under $CHUNK_STUDY_DIR with several strategies and reports stored bytes
// and thread CPU of each. A study tool: skips without the variables.
func TestKindVariants(t *testing.T) {
	root, only := os.Getenv("CHUNK_STUDY_DIR"), os.Getenv("CHUNK_STUDY_KIND")
	if root == "" || only == "" {
		t.Skip("CHUNK_STUDY_DIR or CHUNK_STUDY_KIND not set")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	names := map[fileKind]string{kindDefault: "other", kindWAL: "wal", kindCold: "cold", kindWarm: "warm"}
	type variant struct {
		name string
		f    func(dst, src []byte, level Level, kind fileKind) ([]byte, bool)
	}
	wm := new(walMode)
	var walBufs [5][]byte
	variants := []variant{
		{"walmode", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) { return compressWAL(dst, src, l, wm, nil) }},
		{"current", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return compressKind(dst, src, l, k, formsHuff, nil)
		}},
		{"walrec04", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return compressKind(dst, src, l, k, formsHuff|formsWALRecords, nil)
		}},
		{"walrec04-again", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return compressKind(dst, src, l, k, formsHuff|formsWALRecords, nil)
		}},
		{"warm-hufflits", warmHuffLits},
		{"plain-noprobe", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return compress(dst, src, l, shuffleNever, false, true, nil)
		}},
		{"shuffle-huff", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return compress(dst, src, l, shuffleAlways, false, true, nil)
		}},
		{"shuffle-zstd", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return compress(dst, src, l, shuffleAlways, false, false, nil)
		}},
		{"w3-6.0", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return shuffleW3(dst[:0], src, l, 6.0), true
		}},
		{"w3-5.0", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return shuffleW3(dst[:0], src, l, 5.0), true
		}},
		{"w3-never", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return shuffleW3(dst[:0], src, l, 9), true
		}},
		{"plain-noent", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			out := noEntEnc.EncodeAll(src, append(dst[:0], formatZstd))
			if !pays(len(src), len(out)) {
				return src, false
			}
			return out, true
		}},
		{"litframe", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			out := appendLitFrame(append(dst[:0], formatZstd), src)
			if !pays(len(src), len(out)) {
				return src, false
			}
			return out, true
		}},
		{"litauto1", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			var out []byte
			if len(src) >= 4*probeWindow {
				sm := probeSample(src, probeWindow)
				z := encoder(l).EncodeAll(sm, nil)
				h := appendLitFrame(nil, sm)
				if len(h)*100 <= len(z)*(100+1) {
					out = appendLitFrame(append(dst[:0], formatZstd), src)
				}
			}
			if out == nil {
				out = encoder(l).EncodeAll(src, append(dst[:0], formatZstd))
			}
			if !pays(len(src), len(out)) {
				return src, false
			}
			return out, true
		}},
		{"litauto3", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			var out []byte
			if len(src) >= 4*probeWindow {
				sm := probeSample(src, probeWindow)
				z := encoder(l).EncodeAll(sm, nil)
				h := appendLitFrame(nil, sm)
				if len(h)*100 <= len(z)*(100+3) {
					out = appendLitFrame(append(dst[:0], formatZstd), src)
				}
			}
			if out == nil {
				out = encoder(l).EncodeAll(src, append(dst[:0], formatZstd))
			}
			if !pays(len(src), len(out)) {
				return src, false
			}
			return out, true
		}},
		{"walrec", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return walRecordShuffle(dst[:0], src), false // an estimate: not decodable
		}},
		{"walrecfast", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return walRecordShuffleFast(dst[:0], src, &walBufs), false // an estimate: not decodable
		}},
		{"balanced", func(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
			return compressKind(dst, src, LevelBalanced, k, formsHuff, nil)
		}},
	}
	if sel := os.Getenv("CHUNK_STUDY_VARIANTS"); sel != "" {
		var keep []variant
		for _, v := range variants {
			if strings.Contains(","+sel+",", ","+v.name+",") {
				keep = append(keep, v)
			}
		}
		variants = keep
	}
	in := 0
	stored := make([]int, len(variants))
	cpu := make([]time.Duration, len(variants))
	dcpu := make([]time.Duration, len(variants))
	var plain []byte
	var dst []byte
	err := studyChunks(root, func(k fileKind) bool { return names[k] == only }, func() { wm = new(walMode) },
		func(rel string, level Level, kind fileKind, raw []byte) error {
			in += len(raw)
			for i, v := range variants {
				t0 := threadCPU()
				out, ok := v.f(dst[:0], raw, level, kind)
				cpu[i] += threadCPU() - t0
				stored[i] += len(out)
				if ok {
					t0 = threadCPU()
					var err error
					plain, err = Decompress(plain[:0], out)
					dcpu[i] += threadCPU() - t0
					if err != nil || string(plain) != string(raw) {
						t.Fatalf("%s: %s: round trip: %v", rel, v.name, err)
					}
				}
				if ok && cap(out) > cap(dst) {
					dst = out[:0]
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range variants {
		t.Logf("%s %-14s in %11d stored %11d (%.4f) enc %.3fs dec %.3fs", only, v.name, in, stored[i], float64(stored[i])/float64(in), cpu[i].Seconds(), dcpu[i].Seconds())
	}
}
