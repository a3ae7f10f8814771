// Command share measures whether handing zstd encoders between threads
// costs CPU (docs/benchmarks.md, "Issue 18, session 18"). It replays a
// tree's files (files of 512 KiB and more cut in 1 MiB pieces) through
// EncodeAll at SpeedDefault with memento's options, in modes (comma
// separated, rounds rotate the order, medians printed):
//
//	1            one locked thread
//	2shared      two locked threads, one Encoder of concurrency 2 (memento's)
//	2own         two locked threads, an Encoder each
//	...poll      each input preceded by a copy of as many bytes from a
//	             256 MiB arena (a file read's copy) and a pass summing it
//
//	cd scripts/bench/zstdcost && go build -o /tmp/zshare ./share &&
//	/tmp/zshare /path/to/gosrc 1,2shared,2own,2sharedpoll,2ownpoll
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"zstdcost/replay"
)

var arena = make([]byte, 256<<20)
var sink atomic.Uint64

func run(inputs [][]byte, mode string) (wall, cpu, enc float64) {
	workers := 1
	if strings.HasPrefix(mode, "2") {
		workers = 2
	}
	own := strings.Contains(mode, "own")
	pollute := strings.Contains(mode, "poll")
	shared := replay.Encoder(workers)
	ch := make(chan []byte, 64)
	var wg sync.WaitGroup
	var cpuTot, encTot atomic.Int64
	t := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			e := shared
			if own {
				e = replay.Encoder(1)
			}
			var dst, cp []byte
			pos := w * (128 << 20)
			c0 := replay.ThreadCPU()
			var et int64
			for src := range ch {
				if pollute {
					n := len(src)
					if pos+n > (w+1)*(128<<20) {
						pos = w * (128 << 20)
					}
					cp = append(cp[:0], arena[pos:pos+n]...)
					pos += n
					var s uint64
					for _, b := range src {
						s += uint64(b)
					}
					sink.Add(s)
				}
				c := replay.ThreadCPU()
				dst = e.EncodeAll(src, dst[:0])
				et += replay.ThreadCPU() - c
			}
			cpuTot.Add(replay.ThreadCPU() - c0)
			encTot.Add(et)
		}(w)
	}
	for _, s := range inputs {
		ch <- s
	}
	close(ch)
	wg.Wait()
	return time.Since(t).Seconds(), float64(cpuTot.Load()) / 1e9, float64(encTot.Load()) / 1e9
}

func main() {
	inputs := replay.Inputs(os.Args[1])
	for i := range arena {
		arena[i] = byte(i * 7)
	}
	modes := strings.Split(os.Args[2], ",")
	rounds := 5
	res := map[string][][3]float64{}
	for r := 0; r < rounds; r++ {
		for k := range modes {
			m := modes[(k+r)%len(modes)]
			w, c, e := run(inputs, m)
			res[m] = append(res[m], [3]float64{w, c, e})
			fmt.Fprintf(os.Stderr, "round %d %-12s wall %.3f cpu %.3f encodeall %.3f\n", r+1, m, w, c, e)
		}
	}
	for _, m := range modes {
		var ws, cs, es []float64
		for _, v := range res[m] {
			ws, cs, es = append(ws, v[0]), append(cs, v[1]), append(es, v[2])
		}
		sort.Float64s(ws)
		sort.Float64s(cs)
		sort.Float64s(es)
		fmt.Printf("%-12s median of %d: wall %.3f thread-cpu %.3f EncodeAll %.3f (min %.3f max %.3f)\n", m, rounds, ws[rounds/2], cs[rounds/2], es[rounds/2], es[0], es[rounds-1])
	}
}
