// Command sys measures what zstd's EncodeAll costs on one locked thread
// (thread CPU inside the calls, docs/benchmarks.md, "Issue 18, session
// 18") for a tree's files (files of 512 KiB and more cut in 1 MiB pieces),
// at SpeedDefault with memento's options, in modes (comma separated, rounds
// rotate the order, medians printed):
//
//	none         one encoder, nothing between the calls
//	sys          one getppid system call before every call (a kernel
//	             entry: this VM runs PTI without PCID)
//	alt          two encoders alternated (what one Encoder of concurrency
//	             2 does for one caller)
//	evictN       N KiB of a 64 MiB buffer cleared before every call
//	pp-shared    the calls alternate between threads pinned to CPUs 0 and
//	             1, one at a time, on one encoder
//	pp-own       the same, an encoder per thread
//
//	cd scripts/bench/zstdcost && go build -o /tmp/zsys ./sys &&
//	/tmp/zsys /path/to/gosrc none,sys,alt,pp-shared,pp-own
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"zstdcost/replay"
)

// pingPong compresses inputs alternately on two threads pinned to CPUs 0
// and 1, one at a time; with own each thread has its encoder, else the
// threads share e. Returns both threads' CPU seconds.
func pingPong(inputs [][]byte, e, e2 *zstd.Encoder, own bool) float64 {
	var ch [2]chan []byte
	done := make(chan struct{})
	cpu := make(chan float64, 2)
	for w := range 2 {
		ch[w] = make(chan []byte)
		go func() {
			runtime.LockOSThread()
			var set unix.CPUSet
			set.Set(w)
			unix.SchedSetaffinity(0, &set)
			enc := e
			if own && w == 1 {
				enc = e2
			}
			var dst []byte
			var in int64
			for src := range ch[w] {
				c0 := replay.ThreadCPU()
				dst = enc.EncodeAll(src, dst[:0])
				in += replay.ThreadCPU() - c0
				done <- struct{}{}
			}
			cpu <- float64(in) / 1e9
		}()
	}
	for i, src := range inputs {
		ch[i%2] <- src
		<-done
	}
	close(ch[0])
	close(ch[1])
	return <-cpu + <-cpu
}

func main() {
	inputs := replay.Inputs(os.Args[1])
	runtime.LockOSThread()
	e := replay.Encoder(1)
	e2 := replay.Encoder(1)
	big := make([]byte, 64<<20)
	pos := 0
	modes := strings.Split(os.Args[2], ",")
	res := map[string][]float64{}
	var dst []byte
	const rounds = 7
	for r := 0; r < rounds; r++ {
		for k := range modes {
			m := modes[(k+r)%len(modes)]
			sys := m == "sys"
			t := time.Now()
			var cc float64
			switch {
			case strings.HasPrefix(m, "pp"):
				cc = pingPong(inputs, e, e2, m == "pp-own")
			default:
				var in int64
				var evict int
				fmt.Sscanf(m, "evict%d", &evict)
				evict <<= 10
				for i, src := range inputs {
					if sys {
						syscall.Getppid()
					}
					if evict > 0 {
						if pos+evict > len(big) {
							pos = 0
						}
						clear(big[pos : pos+evict])
						pos += evict
					}
					enc := e
					if m == "alt" && i%2 == 1 {
						enc = e2
					}
					c0 := replay.ThreadCPU()
					dst = enc.EncodeAll(src, dst[:0])
					in += replay.ThreadCPU() - c0
				}
				cc = float64(in) / 1e9
			}
			res[m] = append(res[m], cc)
			fmt.Fprintf(os.Stderr, "round %d %-5s wall %.3f cpu %.3f\n", r+1, m, time.Since(t).Seconds(), cc)
		}
	}
	for _, m := range modes {
		v := res[m]
		sort.Float64s(v)
		fmt.Printf("%-5s median of %d: thread cpu %.3f (min %.3f max %.3f)\n", m, rounds, v[rounds/2], v[0], v[rounds-1])
	}
}
