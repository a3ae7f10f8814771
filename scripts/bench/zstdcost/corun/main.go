// Command corun measures how much slower zstd runs on one core while the
// other core works (docs/benchmarks.md, "Issue 18, session 18"). It
// replays a tree's files (files of 512 KiB and more cut in 1 MiB pieces)
// through EncodeAll (SpeedDefault, memento's options) on a thread pinned to
// CPU 0, measuring the thread CPU inside EncodeAll, while a thread pinned
// to CPU 1 does (modes, comma separated; rounds rotate the order, medians
// printed):
//
//	idle   nothing
//	spin   an integer loop in registers
//	copy   memmove of 1 MiB blocks through a 256 MiB buffer
//	zstd   the same replay on its own encoder
//	dio    O_DIRECT reads of a 1 GiB file (coldFile), 1 MiB each
//	read   the same through the page cache, dropped after each read
//
//	cd scripts/bench/zstdcost && go build -o /tmp/zco ./corun &&
//	/tmp/zco /path/to/gosrc idle,spin,copy,zstd,dio,read
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"zstdcost/replay"
)

func pin(cpu int) {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	unix.SchedSetaffinity(0, &set)
}

var sink atomic.Uint64

const coldFile = "/work/wt/data/def/spaces/space-a/warm/warm_tier.dat"

var aligned = func() []byte {
	b := make([]byte, 2<<20)
	off := 4096 - int(uintptr(unsafe.Pointer(&b[0]))&4095)
	return b[off : off+1<<20]
}()

func main() {
	inputs := replay.Inputs(os.Args[1])
	big := make([]byte, 256<<20)
	for i := range big {
		big[i] = byte(i)
	}
	e0, e1 := replay.Encoder(1), replay.Encoder(1)
	modes := strings.Split(os.Args[2], ",")
	res := map[string][]float64{}
	const rounds = 7
	for r := range rounds {
		for k := range modes {
			m := modes[(k+r)%len(modes)]
			var stop atomic.Bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				pin(1)
				defer runtime.UnlockOSThread()
				var dst []byte
				var x uint64 = 1
				pos := 0
				for !stop.Load() {
					switch m {
					case "idle":
						return
					case "spin":
						for range 100000 {
							x = x*6364136223846793005 + 1442695040888963407
						}
					case "copy":
						if pos+2<<20 > len(big) {
							pos = 0
						}
						copy(big[pos:pos+1<<20], big[pos+1<<20:pos+2<<20])
						pos += 1 << 20
					case "dio", "read":
						flags := os.O_RDONLY
						if m == "dio" {
							flags |= unix.O_DIRECT
						}
						fd, err := unix.Open(coldFile, flags, 0)
						if err != nil {
							panic(err)
						}
						buf := aligned
						var off int64
						for !stop.Load() {
							n, err := unix.Pread(fd, buf, off)
							if n <= 0 || err != nil {
								off = 0
								continue
							}
							if m == "read" {
								unix.Fadvise(fd, off, int64(n), unix.FADV_DONTNEED)
							}
							off += int64(n)
						}
						unix.Close(fd)
					case "zstd":
						for _, src := range inputs {
							if stop.Load() {
								break
							}
							dst = e1.EncodeAll(src, dst[:0])
						}
					}
				}
				sink.Add(x)
			}()
			c := make(chan int64)
			go func() {
				pin(0)
				defer runtime.UnlockOSThread()
				var in int64
				var dst []byte
				for _, src := range inputs {
					c0 := replay.ThreadCPU()
					dst = e0.EncodeAll(src, dst[:0])
					in += replay.ThreadCPU() - c0
				}
				c <- in
			}()
			in := <-c
			stop.Store(true)
			<-done
			res[m] = append(res[m], float64(in)/1e9)
			fmt.Fprintf(os.Stderr, "round %d %-5s cpu0 EncodeAll %.3f\n", r+1, m, float64(in)/1e9)
		}
	}
	for _, m := range modes {
		v := res[m]
		sort.Float64s(v)
		fmt.Printf("CPU 1 %-5s: CPU 0's EncodeAll thread CPU median of %d: %.3f s (min %.3f max %.3f)\n", m, rounds, v[rounds/2], v[0], v[rounds-1])
	}
}
