package repo

import (
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadCPU reports the CPU time the benchmark's own thread spent per
// operation beside ns/op, which on a loaded machine counts other
// processes' turns too.
func threadCPU(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var t0, t1 unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t0)
	n := 0
	for b.Loop() {
		f()
		n++
	}
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &t1)
	b.ReportMetric(float64(t1.Nano()-t0.Nano())/float64(n), "cpu-ns/op")
}

// BenchmarkSealers measures sealing and opening one object of each size
// with every data sealer: the figures behind choosing XAES-256-GCM for new
// repositories (docs/repository-format.md, Sealing).
//
//	go test -run '^$' -bench Sealers ./repo/
func BenchmarkSealers(b *testing.B) {
	key := make([]byte, 32)
	for _, c := range []string{EncryptionXChaCha, EncryptionXAES} {
		s, err := newDataSealer(c, key)
		if err != nil {
			b.Fatal(err)
		}
		for _, size := range []int{300, 1 << 10, 64 << 10, 1 << 20, 4 << 20} {
			plain := make([]byte, size)
			ad := []byte("data 0123456789abcdef0123456789abcdef")
			sealed := s.seal(nil, plain, ad)
			b.Run(fmt.Sprintf("%s/seal/%d", c, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				buf := make([]byte, 0, len(sealed))
				threadCPU(b, func() { buf = s.seal(buf[:0], plain, ad) })
			})
			b.Run(fmt.Sprintf("%s/open/%d", c, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				buf := make([]byte, 0, size)
				threadCPU(b, func() {
					if _, err := s.open(buf[:0], sealed, ad); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}
