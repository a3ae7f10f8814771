package hugepage

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkFirstTouch: what writing fresh anonymous memory costs, one
// byte per 4 KiB page of a new 64 MiB mapping, with 4 KiB pages ("small")
// and advised for huge pages ("advised"). The page faults are the cost; on
// the benchmark VM (docs/benchmarks.md, issue 18, session 10), at load ~8,
// the small pages ran at 82 MB/s, the advised ones at 1,929 MB/s.
//
//	go test -run '^$' -bench FirstTouch ./repo/hugepage/
func BenchmarkFirstTouch(b *testing.B) {
	const n = 64 << 20
	for _, c := range []struct {
		name   string
		advise bool
	}{{"small", false}, {"advised", true}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(n)
			for b.Loop() {
				m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
				if err != nil {
					b.Fatal(err)
				}
				if c.advise {
					Advise(m)
				}
				for i := 0; i < n; i += 4096 {
					m[i] = 1
				}
				if err := unix.Munmap(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
