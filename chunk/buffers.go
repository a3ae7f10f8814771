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
