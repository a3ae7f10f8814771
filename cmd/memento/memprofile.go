package main

import (
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"
)

// memProfileEvery is how often startMemProfile looks at the live heap.
const memProfileEvery = 200 * time.Millisecond

// memProfileStep is how much the live heap must have grown past the last
// written profile's before the profile is written again: a rewrite costs a
// GC-free walk of the sampled allocations, cheap but not free.
const memProfileStep = 8 << 20

// startMemProfile writes a heap profile (go tool pprof; inuse_space is what
// was live, alloc_space what was allocated so far) to path at the highest
// live heap of the run, which is what peak RSS follows, rather than at exit
// when most of it is gone: it samples the heap every memProfileEvery and
// rewrites path whenever the heap grew memProfileStep beyond the last written
// one. The returned func stops the sampler and writes a last profile if none
// was written (a run that never grew). Errors are ignored: profiling is a
// diagnosis aid that must not change what the command does.
func startMemProfile(path string) (stop func()) {
	runtime.MemProfileRate = 64 << 10 // finer than the default 512 KiB, still cheap
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var written uint64
	write := func() {
		f, err := os.Create(path + ".tmp")
		if err != nil {
			return
		}
		if pprof.Lookup("heap").WriteTo(f, 0) != nil || f.Close() != nil {
			os.Remove(path + ".tmp")
			return
		}
		os.Rename(path+".tmp", path)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(memProfileEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if h := sample[0].Value.Uint64(); h > written+memProfileStep {
				written = h
				write()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if written == 0 {
			write()
		}
	}
}
