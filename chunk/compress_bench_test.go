package chunk

import (
	"fmt"
	"testing"
)

// BenchmarkCompress measures Compress per data kind, level and shuffle mode
// on 1 MiB inputs (a WAL/default-sized chunk). ratio = plaintext/stored.
//
//	go test -run '^$' -bench 'Compress$' -benchtime 20x ./chunk/
func BenchmarkCompress(b *testing.B) {
	const size = 1 << 20
	modes := []struct {
		name  string
		mode  shuffleMode
		probe bool
	}{
		{"plain", shuffleNever, false},
		{"shuffle", shuffleAlways, false},
		{"auto", shuffleAuto, true},
	}
	for _, kind := range dataKinds {
		src := kind.gen(size, 42)
		for _, level := range []Level{LevelFastest, LevelBalanced, LevelBetter} {
			for _, m := range modes {
				b.Run(fmt.Sprintf("%s/%s/%s", kind.name, level, m.name), func(b *testing.B) {
					dst := make([]byte, 0, size+1024)
					b.SetBytes(size)
					var stored int
					cpu := startCPU()
					for b.Loop() {
						out, _ := compress(dst, src, level, m.mode, m.probe, true, nil)
						stored = len(out)
					}
					cpu.report(b, size)
					b.ReportMetric(float64(size)/float64(stored), "ratio")
				})
			}
		}
	}
}

// BenchmarkDecompress measures decoding of the default level's output.
func BenchmarkDecompress(b *testing.B) {
	const size = 1 << 20
	for _, kind := range dataKinds {
		src := kind.gen(size, 42)
		for _, m := range []shuffleMode{shuffleNever, shuffleAlways} {
			stored, ok := compress(nil, src, LevelFastest, m, false, true, nil)
			if !ok {
				continue
			}
			name := kind.name + "/plain"
			if m == shuffleAlways {
				name = kind.name + "/shuffle"
			}
			b.Run(name, func(b *testing.B) {
				dst := make([]byte, 0, size)
				b.SetBytes(size)
				for b.Loop() {
					var err error
					if dst, err = Decompress(dst, stored); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
