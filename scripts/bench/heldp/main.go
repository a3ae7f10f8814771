// heldp: how Ps spent a Go execution trace (MEMENTO_TRACE=FILE): held with a goroutine running, held while
// their goroutine sat in a system call, idle while goroutines were runnable.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

func main() {
	f, _ := os.Open(os.Args[1])
	r, err := trace.NewReader(f)
	if err != nil {
		panic(err)
	}
	pState := map[trace.ProcID]trace.ProcState{}
	pSince := map[trace.ProcID]int64{}
	gState := map[trace.GoID]trace.GoState{}
	gSince := map[trace.GoID]int64{}
	var pRun, gRun, gSys, gRunnable int64
	type hold struct {
		since int64
		fn    string
		g     trace.GoID
	}
	held := map[trace.ProcID]*hold{}
	byFn := map[string]int64{}
	sysFn := map[string]int64{}
	sysCnt := map[string]int64{}
	gFn := map[trace.GoID]string{}
	endHold := func(p trace.ProcID, ts int64) {
		if h := held[p]; h != nil {
			byFn[h.fn] += ts - h.since
			delete(held, p)
		}
	}
	var t0, last int64
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		ts := int64(ev.Time())
		if t0 == 0 {
			t0 = ts
		}
		ts -= t0
		last = ts
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		switch st.Resource.Kind {
		case trace.ResourceProc:
			id := st.Resource.Proc()
			_, to := st.Proc()
			if pState[id] == trace.ProcRunning {
				pRun += ts - pSince[id]
			}
			if to != trace.ProcRunning {
				endHold(id, ts)
			}
			pState[id], pSince[id] = to, ts
		case trace.ResourceGoroutine:
			id := st.Resource.Goroutine()
			_, to := st.Goroutine()
			d := ts - gSince[id]
			from := gState[id]
			if to == trace.GoSyscall && ev.Proc() != trace.NoProc {
				fn := "?"
				var fr []string
				for f := range ev.Stack().Frames() {
					fr = append(fr, f.Func)
				}
				// the first frame outside syscall/runtime/poll
				for _, f := range fr {
					if !strings.HasPrefix(f, "syscall.") && !strings.HasPrefix(f, "internal/") && !strings.HasPrefix(f, "runtime.") && !strings.HasPrefix(f, "os.") {
						fn = f
						break
					}
				}
				if len(fr) > 0 {
					fn = fr[0] + " <- " + fn
				}
				held[ev.Proc()] = &hold{ts, fn, id}
				gFn[id] = fn
			}
			if from == trace.GoSyscall {
				sysFn[gFn[id]] += d
				sysCnt[gFn[id]]++
				for p, h := range held {
					if h.g == id {
						endHold(p, ts)
					}
				}
			}
			switch gState[id] {
			case trace.GoRunning:
				gRun += d
			case trace.GoSyscall:
				gSys += d
			case trace.GoRunnable:
				gRunnable += d
			}
			gState[id], gSince[id] = to, ts
		}
	}
	type kv struct {
		k string
		v int64
	}
	var kvs []kv
	for k, v := range byFn {
		kvs = append(kvs, kv{k, v})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].v > kvs[j].v })
	for i, e := range kvs {
		if i == 15 {
			break
		}
		fmt.Printf("%8.3fs held of %8.3fs in %6d calls  %s\n", float64(e.v)/1e9, float64(sysFn[e.k])/1e9, sysCnt[e.k], e.k)
	}
	s := func(v int64) float64 { return float64(v) / 1e9 }
	fmt.Printf("trace %.2fs; P held %.2f P-s, G running %.2f, held-not-running %.2f; G in syscall %.2f G-s; G runnable %.2f G-s\n",
		s(last), s(pRun), s(gRun), s(pRun-gRun), s(gSys), s(gRunnable))
}
