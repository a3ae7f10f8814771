package chunk

import (
	"math/bits"
	"sync"
)

// Buffers are pooled by power-of-two size class so a pipeline that cuts
// millions of chunks allocates a few dozen buffers, not millions, and so
// buffers sized for 8 MiB WAL chunks are not handed to 32 KiB page chunks.
const (
	minClass = 12 // 4 KiB
	maxClass = 24 // 16 MiB
)

var bufPools [maxClass + 1]sync.Pool

func sizeClass(n int) int {
	if n <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(n - 1))
}

// getBuf returns a pooled buffer with len n and cap at least n.
func getBuf(n int) *[]byte {
	c := sizeClass(n)
	if c > maxClass {
		b := make([]byte, n)
		return &b
	}
	if v := bufPools[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// putBuf returns b to its pool. b must not be used afterwards.
func putBuf(b *[]byte) {
	c := bits.Len(uint(cap(*b))) - 1
	if cap(*b) != 1<<c || c < minClass || c > maxClass {
		return // not one of ours (e.g. grown by append); let the GC have it
	}
	*b = (*b)[:0]
	bufPools[c].Put(b)
}

// Buffer returns a pooled, empty buffer with capacity at least n, for callers
// that cut chunks themselves (the WAL archiver, which must know every chunk's
// size). Pooling is process-wide: a fresh multi-MiB buffer per chunk or per
// file costs more in zeroing than the chunking itself. Return it with
// PutBuffer once nothing refers to it.
func Buffer(n int) *[]byte {
	b := getBuf(n)
	*b = (*b)[:0]
	return b
}

// PutBuffer gives back a buffer from Buffer.
func PutBuffer(b *[]byte) { putBuf(b) }

// bigClass is the smallest size class a Pipeline keeps in its own free list
// (bufList) rather than in the process-wide sync.Pools: 1 MiB, the WAL's
// chunks and up. A sync.Pool is emptied by every garbage collection, and a
// backup under the soft memory limit collects every few hundred
// milliseconds, so the multi-MiB buffers of cold and WAL chunks were
// allocated again (and zeroed by the runtime: 5 % of a first backup's CPU)
// over and over.
const bigClass = 20

// bufList is a bounded free list of big buffers (size classes bigClass to
// maxClass) that garbage collection does not empty. A Pipeline owns one for
// its Splits' chunk buffers and its workers' compression buffers, so what it
// keeps lives while the pipeline has Splits running, never beyond. Smaller buffers
// and buffers beyond the list's bound go to the sync.Pools (getBuf, putBuf).
// A nil *bufList is those pools alone.
type bufList struct {
	mu    sync.Mutex
	free  [maxClass + 1][]*[]byte
	bytes int64 // capacity of the buffers in free
	limit int64 // most bytes free holds
}

func newBufList(limit int64) *bufList { return &bufList{limit: limit} }

// get returns a buffer with len n and cap at least n.
func (l *bufList) get(n int) *[]byte {
	c := sizeClass(n)
	if l == nil || c < bigClass || c > maxClass {
		return getBuf(n)
	}
	l.mu.Lock()
	if k := len(l.free[c]); k > 0 {
		b := l.free[c][k-1]
		l.free[c][k-1] = nil
		l.free[c] = l.free[c][:k-1]
		l.bytes -= int64(cap(*b))
		l.mu.Unlock()
		*b = (*b)[:n]
		return b
	}
	l.mu.Unlock()
	return getBuf(n)
}

// put gives b back. b must not be used afterwards.
func (l *bufList) put(b *[]byte) {
	c := bits.Len(uint(cap(*b))) - 1
	if l == nil || cap(*b) != 1<<c || c < bigClass || c > maxClass {
		putBuf(b)
		return
	}
	l.mu.Lock()
	if l.bytes+int64(cap(*b)) > l.limit {
		l.mu.Unlock()
		putBuf(b)
		return
	}
	*b = (*b)[:0]
	l.free[c] = append(l.free[c], b)
	l.bytes += int64(cap(*b))
	l.mu.Unlock()
}

// release empties the list into the sync.Pools, where the next garbage
// collection frees what nobody takes: a pipeline does that when it goes
// idle, so a long-lived one (the agent's) keeps no memory between backups.
func (l *bufList) release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	free := l.free
	l.free = [maxClass + 1][]*[]byte{}
	l.bytes = 0
	l.mu.Unlock()
	for _, bs := range free {
		for _, b := range bs {
			putBuf(b)
		}
	}
}
