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
type limitShifter struct{ mu sync.Mutex }

// lower takes up to n bytes off the limit, as far as minHeapLimit, and
// returns how many it took.
func (l *limitShifter) lower(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := debug.SetMemoryLimit(-1)
	if cur == math.MaxInt64 || cur <= minHeapLimit {
		return 0
	}
	n = min(n, cur-minHeapLimit)
	debug.SetMemoryLimit(cur - n)
	return n
}

// raise puts n bytes on the limit (those lower took, or ShiftLimit's) and
// returns how many it put: none without a limit (math.MaxInt64) or for one
// too large to move.
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
// how far it moved it: up by all of n (n > 0), or down by at most -n, as far
// as minHeapLimit (n < 0). For memory a caller bounds by its own budget and
// that the heap's limit should therefore not squeeze: repo's pack buffers,
// which raise the limit by what they hold while packers run and take it
// back (packPool.shiftLimit). A process without a limit is left alone (0).
// The caller keeps the sum of what it was given and gives back that sum.
func ShiftLimit(n int64) int64 {
	if n < 0 {
		return -heapLimit.lower(-n)
	}
	return heapLimit.raise(n)
}
