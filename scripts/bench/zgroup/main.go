// zgroup: compress every regular file under DIR with klauspost zstd as memento
// does (one EncodeAll per file; no CRC, single segment, literals always
// entropy-coded), and again with the files concatenated in walk order into
// groups of 64 KiB, 256 KiB and 1 MiB, at SpeedFastest and SpeedDefault; prints
// stored bytes and the CPU seconds of each pass (one core). Measures what
// compressing small files together would save (docs/benchmarks.md, "Issue 18,
// session 18"). Usage: zgroup DIR
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
)

func main() {
	var files [][]byte
	filepath.WalkDir(os.Args[1], func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			files = append(files, b)
		}
		return nil
	})
	var total int
	for _, f := range files {
		total += len(f)
	}
	fmt.Println("files", len(files), "bytes", total)
	for _, lv := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(lv), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithAllLitEntropyCompression(true), zstd.WithEncoderConcurrency(1))
		for _, group := range []int{0, 64 << 10, 256 << 10, 1 << 20} {
			var out int
			var buf, dst []byte
			t := time.Now()
			c0 := cpu()
			for i, f := range files {
				if group == 0 {
					dst = enc.EncodeAll(f, dst[:0])
					if len(dst) < len(f) {
						out += len(dst)
					} else {
						out += len(f)
					}
					continue
				}
				buf = append(buf, f...)
				if len(buf) >= group || i == len(files)-1 {
					dst = enc.EncodeAll(buf, dst[:0])
					out += len(dst)
					buf = buf[:0]
				}
			}
			fmt.Printf("%v group %d: %d bytes (%.3f) in %.2f s wall, %.2f s CPU\n", lv, group, out, float64(out)/float64(total), time.Since(t).Seconds(), cpu()-c0)
		}
	}
}

func cpu() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
