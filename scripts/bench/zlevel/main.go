// zlevel: cut every regular file under DIR into 1 MiB pieces (about memento's
// average chunk of a plain file) and compress each with klauspost zstd as
// memento does (one EncodeAll per piece, no CRC, single segment; a piece is
// stored raw unless it saves 5 %), at the fastest, default and better levels,
// with and without every literals block entropy-coded; prints the stored
// share of the bytes and the CPU seconds of each pass (one core). Measures
// what a level costs on binaries (docs/benchmarks.md, "Issue 18, session 19").
// Usage: zlevel DIR
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/klauspost/compress/zstd"
)

func cpu() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func main() {
	var chunks [][]byte
	total := 0
	filepath.WalkDir(os.Args[1], func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			for len(b) > 0 {
				n := min(len(b), 1<<20)
				chunks = append(chunks, b[:n])
				total += n
				b = b[n:]
			}
		}
		return nil
	})
	fmt.Println("chunks", len(chunks), "bytes", total)
	for _, lv := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		for _, ent := range []bool{true, false} {
			enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(lv), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithAllLitEntropyCompression(ent), zstd.WithEncoderConcurrency(1))
			out := 0
			var dst []byte
			c0 := cpu()
			for _, c := range chunks {
				dst = enc.EncodeAll(c, dst[:0])
				if len(dst)*100 < len(c)*95 {
					out += len(dst)
				} else {
					out += len(c)
				}
			}
			fmt.Printf("%v allLitEnt=%v: %d (%.4f) %.2f CPU s\n", lv, ent, out, float64(out)/float64(total), cpu()-c0)
		}
	}
}
