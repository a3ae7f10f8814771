package fusefs

import (
	"math/bits"
	"sync"
	"unsafe"
)

// chunkMem is the memory chunks are read and decoded into: one slab,
// faulted in by a goroutine the mount starts with (prefault), handed out as
// it is faulted in, and handed out
// in power-of-two blocks of 32 KiB and up (a buddy allocator). On this
// project's VMs touching a fresh page costs about 5 µs (the hypervisor backs
// it on first touch): reading a 29 MB cold segment through a fresh mount
// spent more CPU on page faults (its runs read into fresh buffers, its
// chunks decoded into fresh slices) than on decrypting, decompressing and
// hashing, and a mount is a fresh process whose first read has nothing to
// reuse. The slab holds what a sequential reader keeps live (readaheadBytes
// ahead, two kernel readahead windows behind, the runs being read; blocks
// are rounded up to a power of two), so a file of any size is served from
// it; what does not fit (a cache filled by many readers, a chunk larger
// than the largest free block) is a fresh slice from the Go heap as
// before. Blocks come back through free when a run is opened and when the
// cache drops a chunk no reader has pinned (lru.Cache.Release). The slab is the
// mount's (FS) and lives as long as it: its size is the bound.
type chunkMem struct {
	mu    sync.Mutex
	slab  []byte
	base  uintptr
	top   int             // order of the whole slab: len(slab) == minBlock<<top
	avail []map[int]bool  // avail[k]: offsets of free blocks of minBlock<<k bytes
	order map[int][]piece // offset of each allocation -> the blocks it holds
	// faulted is how far prefault has got: blocks are made free only once
	// they are faulted in, so no byte of a block in use is ever written by
	// prefault.
	faulted int
	stats   chunkMemStats
}

// chunkMemStats counts what chunkMem served.
type chunkMemStats struct {
	hits, misses int64 // allocations served from the slab, and not
	used, peak   int64 // bytes handed out now, and at most
}

const (
	minBlockShift = 15 // 32 KiB, the warm page file's chunk
	minBlock      = 1 << minBlockShift
	// defaultChunkMem is the slab of a mount: a sequential reader keeps
	// readaheadBytes (16 MiB, at least Readahead chunks) ahead and two
	// kernel readahead windows (8 MiB) behind it, each loader holds a run
	// of up to a chunk (8 MiB) or 4 MiB of small ones, and blocks are
	// rounded up to a power of two.
	defaultChunkMem = 64 << 20
	// prefaultStep is how much prefault faults in before it hands it out.
	prefaultStep = 2 << 20
)

// chunkMemSize is the slab a mount with o gets: defaultChunkMem, at most
// the chunk cache's bound, a power of two; 0 below 1 MiB.
func chunkMemSize(o Options) int64 {
	n := min(o.CacheSize, defaultChunkMem)
	if n < 1<<20 {
		return 0
	}
	return minBlock << (bits.Len64(uint64(n>>minBlockShift)) - 1)
}

// newChunkMem returns an allocator over a slab of size bytes (a power of
// two multiple of minBlock, from chunkMemSize), or nil for 0. Nothing is
// handed out before prefault (run it in a goroutine of its own) faults the
// slab in.
func newChunkMem(size int64) *chunkMem {
	if size < minBlock {
		return nil
	}
	top := bits.Len64(uint64(size>>minBlockShift)) - 1
	n := minBlock << top
	m := &chunkMem{slab: make([]byte, n), top: top, avail: make([]map[int]bool, top+1),
		order: map[int][]piece{}}
	m.base = uintptr(unsafe.Pointer(unsafe.SliceData(m.slab)))
	adviseHuge(m.slab)
	for k := range m.avail {
		m.avail[k] = map[int]bool{}
	}
	return m
}

// prefault faults the slab in (populate, or a touch per page), handing it
// out as it goes (prefaultStep at a time), and stops early when stop is
// closed. It runs beside the mount's first requests rather than before the
// mount comes up: about 64 MiB of first touches, some 30-60 ms of CPU on an
// idle VM of this project and several times that on a loaded one.
func (m *chunkMem) prefault(stop <-chan struct{}) {
	for off := 0; off < len(m.slab); off += prefaultStep {
		select {
		case <-stop:
			return
		default:
		}
		end := min(off+prefaultStep, len(m.slab))
		if !populate(m.slab[off:end]) {
			for p := off; p < end; p += 4096 {
				m.slab[p] = 0
			}
		}
		m.mu.Lock()
		m.faulted = end
		for b := off; b < end; b += minBlock {
			m.putLocked(b, 0)
		}
		m.mu.Unlock()
	}
}

// orderOf is the order of the smallest block holding n bytes.
func orderOf(n int) int {
	if n <= minBlock {
		return 0
	}
	return bits.Len(uint(n-1)) - minBlockShift
}

// alloc returns n bytes of the slab (cap n rounded up to minBlock), or nil
// when it has no free block that large. The power-of-two block found is
// split and the part beyond the rounded n given back at once, so a 4.1 MiB
// chunk holds 4.1 MiB of the slab, not 8.
func (m *chunkMem) alloc(n int) []byte {
	if m == nil || n <= 0 {
		return nil
	}
	k := orderOf(n)
	m.mu.Lock()
	defer m.mu.Unlock()
	j := k
	for j <= m.top && len(m.avail[j]) == 0 {
		j++
	}
	if j > m.top {
		m.stats.misses++
		return nil
	}
	off := -1
	for o := range m.avail[j] {
		if off < 0 || o < off { // the lowest: keeps the rest of the slab in large blocks
			off = o
		}
	}
	delete(m.avail[j], off)
	for j > k { // split: the upper halves stay free
		j--
		m.avail[j][off+minBlock<<j] = true
	}
	need := (n + minBlock - 1) &^ (minBlock - 1)
	m.order[off] = m.keep(nil, off, k, need)
	m.stats.hits++
	m.stats.used += int64(need)
	m.stats.peak = max(m.stats.peak, m.stats.used)
	return m.slab[off : off+n : off+need]
}

// piece is a block of the slab: its offset and order.
type piece struct{ off, k int }

// keep splits the block at off of order k into the pieces that hold its
// first need bytes (a multiple of minBlock, at most the block), which it
// appends to kept, and frees the rest.
func (m *chunkMem) keep(kept []piece, off, k, need int) []piece {
	for {
		size := minBlock << k
		if need == size {
			return append(kept, piece{off, k})
		}
		half := size / 2
		k--
		if need <= half {
			m.avail[k][off+half] = true // the upper half is not needed
			continue
		}
		kept = append(kept, piece{off, k})
		off, need = off+half, need-half
	}
}

// free gives back a block from alloc; any other slice (a fresh one from the
// Go heap, nil) is left to the garbage collector.
func (m *chunkMem) free(b []byte) {
	if m == nil || cap(b) == 0 {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < m.base || p >= m.base+uintptr(len(m.slab)) {
		return
	}
	off := int(p - m.base)
	m.mu.Lock()
	defer m.mu.Unlock()
	pieces, ok := m.order[off]
	if !ok {
		panic("fusefs: chunk memory freed twice or not from alloc")
	}
	delete(m.order, off)
	for _, pc := range pieces {
		m.stats.used -= int64(minBlock << pc.k)
		m.putLocked(pc.off, pc.k)
	}
}

// putLocked makes the block at off of order k free, merged with its free
// buddies. A buddy beyond what prefault has reached is never free, so the
// slab comes into use as it is faulted in.
func (m *chunkMem) putLocked(off, k int) {
	for k < m.top {
		buddy := off ^ (minBlock << k)
		if !m.avail[k][buddy] {
			break
		}
		delete(m.avail[k], buddy)
		off = min(off, buddy)
		k++
	}
	m.avail[k][off] = true
}

// freeBytes returns the bytes free in the slab, and how many blocks are
// handed out.
func (m *chunkMem) freeBytes() (free, used int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, f := range m.avail {
		free += len(f) * (minBlock << k)
	}
	return free, len(m.order)
}
