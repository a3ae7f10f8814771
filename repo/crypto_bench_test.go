package repo

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20"
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
// repositories (docs/repository-format.md, Sealing). "-batch" seals as a
// pack's blobs are sealed (one nonce prefix per pack, the XAES key derived
// once); "open" opens the same object again and again (XAES: its derived
// key cached, as for the blobs of one pack read in a row), "open-miss" one
// of 256 objects sealed under different prefixes in turn (the derivation
// every time, as for blobs written before packs shared a prefix).
//
//	go test -run '^$' -bench Sealers ./repo/
func BenchmarkSealers(b *testing.B) {
	key := make([]byte, 32)
	for _, c := range []string{EncryptionXChaCha, EncryptionXAES, EncryptionXAES + "-batch"} {
		s, err := newDataSealer(strings.TrimSuffix(c, "-batch"), key)
		if err != nil {
			b.Fatal(err)
		}
		if strings.HasSuffix(c, "-batch") {
			s = s.batch()
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
			if strings.HasSuffix(c, "-batch") {
				continue // opens like the sealer itself
			}
			b.Run(fmt.Sprintf("%s/open/%d", c, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				buf := make([]byte, 0, size)
				threadCPU(b, func() {
					if _, err := s.open(buf[:0], sealed, ad); err != nil {
						b.Fatal(err)
					}
				})
			})
			if size > 64<<10 {
				continue
			}
			many := make([][]byte, 256)
			for i := range many {
				many[i] = s.seal(nil, plain, ad)
			}
			b.Run(fmt.Sprintf("%s/open-miss/%d", c, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				buf := make([]byte, 0, size)
				i := 0
				threadCPU(b, func() {
					if _, err := s.open(buf[:0], many[i%len(many)], ad); err != nil {
						b.Fatal(err)
					}
					i++
				})
			})
		}
	}
}

// BenchmarkHChaCha20 is XChaCha20-Poly1305's per-message subkey
// derivation alone, which a shared nonce prefix could save
// (docs/security.md, "Nonces"): compare with its seal above.
func BenchmarkHChaCha20(b *testing.B) {
	key, nonce := make([]byte, 32), make([]byte, 16)
	threadCPU(b, func() {
		if _, err := chacha20.HChaCha20(key, nonce); err != nil {
			b.Fatal(err)
		}
	})
}
