// Package replay holds what the zstdcost commands share: a tree's files as
// the inputs a backup compresses, memento's encoder options, and a
// thread's CPU clock.
package replay

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Inputs reads every regular file below dir: a file of 512 KiB or more
// (memento's default Min) is cut in 1 MiB pieces, as the chunks it is
// stored in average; files under 64 bytes, stored raw, are left out.
func Inputs(dir string) [][]byte {
	var inputs [][]byte
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			for len(b) >= 512<<10 {
				n := min(len(b), 1<<20)
				inputs = append(inputs, b[:n])
				b = b[n:]
			}
			if len(b) > 64 {
				inputs = append(inputs, b)
			}
		}
		return nil
	})
	return inputs
}

// Encoder is a zstd encoder with chunk's options for text (SpeedDefault)
// and the given concurrency.
func Encoder(concurrency int) *zstd.Encoder {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(concurrency),
		zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		panic(err)
	}
	return e
}

// ThreadCPU is the calling thread's CPU time in nanoseconds.
func ThreadCPU() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return ts.Nano()
}
