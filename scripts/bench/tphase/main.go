// tphase: the phases of a Go execution trace (MEMENTO_TRACE=FILE): per bucket of BUCKET ms, the goroutines
// running, in a system call and runnable (in goroutine-seconds per second); what ran in the first HEAD ms and the
// last TAIL ms, and in the window WIN=LO-HI (ms) if that variable is set (each running interval attributed to its
// goroutine's stack when it ended, each system call to the stack that entered it); and, for each
// comma-separated function name part in MARKS, when a stack holding it was first and last seen
// (docs/benchmarks.md, "Issue 18, session 21: the first backup of small-file trees").
//
//	tphase TRACE BUCKET HEAD TAIL [MARKS]
//	tphase t.out 100 150 400 argon2.IDKey,openIndex,saveItems,Packer).Flush,SaveFile,AddFiles,SaveSnapshot
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/exp/trace"
)

type iv struct {
	g          trace.GoID
	start, end int64
	fn         string
	kind       string
}

func frames(st trace.Stack) []string {
	var fr []string
	for f := range st.Frames() {
		fr = append(fr, f.Func)
	}
	return fr
}

func pick(fr []string) string {
	var out []string
	for _, f := range fr {
		if strings.HasPrefix(f, "runtime.") || strings.HasPrefix(f, "internal/") || strings.HasPrefix(f, "syscall.") || strings.HasPrefix(f, "sync.") {
			continue
		}
		f = strings.TrimPrefix(f, "memento/")
		out = append(out, f)
		if len(out) == 3 {
			break
		}
	}
	return strings.Join(out, " < ")
}

func main() {
	f, _ := os.Open(os.Args[1])
	bucket, _ := strconv.ParseFloat(os.Args[2], 64) // ms
	head, _ := strconv.ParseFloat(os.Args[3], 64)   // ms: detail window at the start
	tail, _ := strconv.ParseFloat(os.Args[4], 64)   // ms: detail window at the end
	r, err := trace.NewReader(f)
	if err != nil {
		panic(err)
	}
	gState := map[trace.GoID]trace.GoState{}
	gSince := map[trace.GoID]int64{}
	gStartFn := map[trace.GoID]string{}
	gEnter := map[trace.GoID]string{}
	var ivs []iv
	var t0, last int64
	var marks []string
	if len(os.Args) > 5 {
		marks = strings.Split(os.Args[5], ",")
	}
	first, lastSeen := map[string]int64{}, map[string]int64{}
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
		if marks != nil {
			for f := range ev.Stack().Frames() {
				for _, m := range marks {
					if strings.Contains(f.Func, m) {
						if _, ok := first[m]; !ok {
							first[m] = ts
						}
						lastSeen[m] = ts
					}
				}
			}
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, to := st.Goroutine()
		if from == trace.GoNotExist || from == trace.GoUndetermined {
			if fr := frames(st.Stack); len(fr) > 0 {
				gStartFn[id] = pick(fr)
			}
		}
		prev := gState[id]
		if prev == trace.GoRunning || prev == trace.GoSyscall || prev == trace.GoRunnable {
			fn := pick(frames(ev.Stack()))
			if fn == "" {
				fn = "[" + gStartFn[id] + "]"
			}
			if prev == trace.GoSyscall && gEnter[id] != "" {
				fn = gEnter[id]
			}
			k := map[trace.GoState]string{trace.GoRunning: "run", trace.GoSyscall: "sys", trace.GoRunnable: "rdy"}[prev]
			ivs = append(ivs, iv{id, gSince[id], ts, fn, k})
		}
		gState[id], gSince[id] = to, ts
		if to == trace.GoSyscall {
			gEnter[id] = pick(frames(ev.Stack()))
		}
		_ = from
	}
	b := int64(bucket * 1e6)
	n := last/b + 1
	run := make([]int64, n)
	sys := make([]int64, n)
	rdy := make([]int64, n)
	for _, v := range ivs {
		for s := v.start; s < v.end; {
			k := s / b
			e := min(v.end, (k+1)*b)
			switch v.kind {
			case "run":
				run[k] += e - s
			case "sys":
				sys[k] += e - s
			case "rdy":
				rdy[k] += e - s
			}
			s = e
		}
	}
	fmt.Printf("trace %.3fs\n", float64(last)/1e9)
	for k := int64(0); k < n; k++ {
		fmt.Printf("%7.0fms run %.2f sys %.2f rdy %.2f\n", float64(k*b)/1e6, float64(run[k])/float64(b), float64(sys[k])/float64(b), float64(rdy[k])/float64(b))
	}
	win := func(name string, lo, hi int64) {
		agg := map[string]int64{}
		for _, v := range ivs {
			s, e := max(v.start, lo), min(v.end, hi)
			if e > s && v.kind != "rdy" {
				agg[v.kind+" "+v.fn] += e - s
			}
		}
		type kv struct {
			k string
			v int64
		}
		var kvs []kv
		for k, v := range agg {
			kvs = append(kvs, kv{k, v})
		}
		sort.Slice(kvs, func(i, j int) bool { return kvs[i].v > kvs[j].v })
		fmt.Printf("== %s %.0f-%.0f ms\n", name, float64(lo)/1e6, float64(hi)/1e6)
		for i, e := range kvs {
			if i == 25 {
				break
			}
			fmt.Printf("%8.1fms %s\n", float64(e.v)/1e6, e.k)
		}
	}
	for _, m := range marks {
		if t, ok := first[m]; ok {
			fmt.Printf("mark %-40s first %8.1fms last %8.1fms\n", m, float64(t)/1e6, float64(lastSeen[m])/1e6)
		}
	}
	if w := os.Getenv("WIN"); w != "" {
		var lo, hi float64
		fmt.Sscanf(w, "%f-%f", &lo, &hi)
		win("win", int64(lo*1e6), int64(hi*1e6))
	}
	win("head", 0, int64(head*1e6))
	win("tail", last-int64(tail*1e6), last)
}
