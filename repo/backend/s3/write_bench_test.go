package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"memento/repo/backend/backendtest"
	"syscall"
	"testing"

	"golang.org/x/sync/errgroup"
)

// BenchmarkWritePacks uploads 16 packs of 16 MiB from memory, 4 at once (two
// spaces with two uploaders each, as a backup does), once per upload
// checksum mode, and once with CRC32C from a source that is not a
// *bytes.Reader (as in replication), which sends the CRC in a trailer. Besides MB/s it reports the CPU seconds per operation of the
// client (this process) and of the MinIO server, which share the machine.
func BenchmarkWritePacks(b *testing.B) {
	const packs, packSize, writers = 16, 16 << 20, 4
	data := make([][]byte, packs)
	for i := range data {
		data[i] = backendtest.RandBytes(uint64(i+1), packSize)
	}
	for _, bc := range []struct {
		name   string
		mode   UploadChecksum
		stream bool // the source is not in memory (as in replication): CRC32C goes in a trailer
	}{
		{"crc32c", ChecksumCRC32C, false}, {"crc32c-stream", ChecksumCRC32C, true},
		{"md5", ChecksumMD5, false}, {"sha256", ChecksumSHA256, false}, {"none", ChecksumNone, false},
	} {
		mode := bc.mode
		b.Run(bc.name, func(b *testing.B) {
			cfg, srv := testConfig(b, "")
			cfg.Checksum = mode
			be := openTest(b, cfg)
			b.SetBytes(packs * packSize)
			cpu0, srv0 := clientCPU(), serverCPU(b, srv.CPUSeconds)
			b.ResetTimer()
			for iter := range b.N {
				g, ctx := errgroup.WithContext(context.Background())
				g.SetLimit(writers)
				for i, d := range data {
					g.Go(func() error {
						name := fmt.Sprintf("data/%02x/%s", i, hex64(byte('a'+iter%6)))
						var r io.Reader = bytes.NewReader(d)
						if bc.stream {
							r = io.NewSectionReader(bytes.NewReader(d), 0, int64(len(d)))
						}
						return be.Write(ctx, name, r, int64(len(d)))
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric((clientCPU()-cpu0)/float64(b.N), "client-cpu-s/op")
			b.ReportMetric((serverCPU(b, srv.CPUSeconds)-srv0)/float64(b.N), "minio-cpu-s/op")
		})
	}
}

func clientCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func serverCPU(b *testing.B, f func() (float64, error)) float64 {
	s, err := f()
	if err != nil {
		b.Fatal(err)
	}
	return s
}
