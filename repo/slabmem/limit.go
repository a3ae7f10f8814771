package slabmem

import (
	"math"
	"runtime/debug"
	"sync"
)

// The Go runtime's soft memory limit (runtime/debug.SetMemoryLimit:
// cmd/memento sets 200 MiB, GOMEMLIMIT another) bounds the heap, and the
// slabs are not heap: a 10 GiB restore with 112 MiB of slabs beside a heap
// kept at the limit peaked at 285-309 MiB of RSS (docs/benchmarks.md,
// sessions 12 and 13), at the 300 MiB bound. So a Mem takes what it maps off
// the limit and gives it back when it unmaps (Release): the heap and the
// slabs together stay within what the process set. A process without a
// limit (math.MaxInt64) is left alone, and the limit is never lowered below
// minHeapLimit, so a heap that needs it is not made to collect back to back.
// The shifts of concurrent Mems add up (each remembers what it took).
var heapLimit limitShifter

// minHeapLimit is the least limit a Mem leaves the heap: a restore's or an
// L2's heap (file lists, index lookups, small files' buffers) lives in 60-90
// MiB beside its slabs.
const minHeapLimit = 72 << 20

// limitShifter serializes the read-modify-write of the runtime's limit.
//
// A give-back of ShiftLimit's raise (giveBack) while Mems hold the limit
// near minHeapLimit lowers it only as far as the floor and owes the rest
// (debt): the Mems' lowers were taken from a limit that held the raise, so
// the first Mem releases pay it off, and the last one pays what is left.
// Without Mems a give-back takes off all it put on, below the floor too
// (a limit set lower than minHeapLimit). So whatever the order, once every
// Mem is released and every raise given back, the limit is where it was.
type limitShifter struct {
	mu   sync.Mutex
	held int64 // what the Mems' lowers took and have not given back
	debt int64 // what give-backs did not take off yet
}

// lower takes up to n bytes off the limit, as far as minHeapLimit, and
// returns how many it took (a Mem's: release gives them back).
func (l *limitShifter) lower(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := debug.SetMemoryLimit(-1)
	if cur == math.MaxInt64 || cur <= minHeapLimit {
		return 0
	}
	n = min(n, cur-minHeapLimit)
	debug.SetMemoryLimit(cur - n)
	l.held += n
	return n
}

// release gives back n bytes that lower took, less what give-backs owe.
func (l *limitShifter) release(n int64) {
	if n <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held -= n
	pay := min(n, l.debt)
	l.debt -= pay
	n -= pay
	if l.held <= 0 {
		l.held = 0
		n -= l.debt // no Mem holds the limit down any more: all of it
		l.debt = 0
	}
	if cur := debug.SetMemoryLimit(-1); cur != math.MaxInt64 && (n <= 0 || cur <= math.MaxInt64-n) {
		debug.SetMemoryLimit(max(cur+n, 1))
	}
}

// giveBack takes n bytes of ShiftLimit's raise off the limit (as far as
// minHeapLimit while Mems hold some of it, owing the rest) and returns n,
// or 0 without a limit.
func (l *limitShifter) giveBack(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := debug.SetMemoryLimit(-1)
	if cur == math.MaxInt64 {
		return 0
	}
	take := n
	if l.held > 0 {
		take = min(n, max(0, cur-minHeapLimit))
		l.debt += n - take
	}
	debug.SetMemoryLimit(max(cur-take, 1))
	return n
}

// raise puts ShiftLimit's n bytes on the limit and returns how many it
// put: none without a limit (math.MaxInt64) or for one too large to move.
func (l *limitShifter) raise(n int64) int64 {
	if n <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := debug.SetMemoryLimit(-1)
	if cur > math.MaxInt64-n {
		return 0
	}
	debug.SetMemoryLimit(cur + n)
	return n
}

// ShiftLimit moves the runtime's soft memory limit by n bytes and returns
// how far it moved it: up by all of n (n > 0), or down by -n (n < 0: a
// give-back of what it raised; while Mems hold the limit down, as far as
// minHeapLimit, the rest when they release: limitShifter). For memory a caller bounds by its own budget and
// that the heap's limit should therefore not squeeze: repo's pack buffers,
// which raise the limit by what they hold while packers run and take it
// back (packPool.shiftLimit). A process without a limit is left alone (0).
// The caller keeps the sum of what it was given and gives back that sum.
func ShiftLimit(n int64) int64 {
	if n < 0 {
		return -heapLimit.giveBack(-n)
	}
	return heapLimit.raise(n)
}
