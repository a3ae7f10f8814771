// Package slabmem hands out power-of-two buffers carved from huge-page slabs
// that their owner maps, reuses and unmaps itself (a restore, a verify).
package slabmem

import (
	"math/bits"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo/hugepage"
)

// A restore's and an L2 verify's large buffers come from memory of their
// own, backed by huge pages.
//
// A data dir's restore touches some 200 MiB of fresh heap (the runs read
// ahead, the plaintexts of their blobs, the files' write buffers): about
// 50,000 first touches of a 4 KiB page, each a page fault that costs ~10 µs
// of system time on the benchmark VM (repo/hugepage), half a CPU second per
// restore. The Go heap is not advised for transparent huge pages, so the
// restore carves its buffers from slabs it allocates itself, advises for
// huge pages before touching them (one fault per 2 MiB) and keeps for reuse
// until it ends (a sync.Pool is emptied by every garbage collection, and
// the runs, plaintexts and write buffers are taken and given back
// thousands of times). The restores of one `restore --all` share it
// through their FileGate, the L2 streams of a relay of snapshots share one,
// and an L2 pass outside a relay has its own (repo/verify); when the owner
// ends the slabs are unmapped. L2's runs read ahead and the plaintexts of
// their chunks faulted in ~45,000 pages of fresh heap per data dir the
// same way (docs/benchmarks.md, session 13). There is no process-wide
// arena: each owner bounds its own and gives it back.
//
// The memory is bounded by what its owner holds at once (a restore: the
// file gate's files, each within restoreAhead and its write buffers; L2:
// its read-ahead budget) rounded up to slabs, and by the limit (Cap unless
// NewLimit says less): past it a buffer is plain heap memory (a fresh
// allocation, not the pools' reused buffers). The slabs are outside the Go
// heap, so a Mem takes what it maps off the heap's soft limit while it
// holds it (limit.go): with the heap left at its full limit beside them,
// 10 GiB restores peaked at 264-309 MiB (docs/benchmarks.md, sessions 12
// and 13), with the shift at 214 MiB. Cap bounds what it maps: a data dir's
// restore maps 96-112 MiB (1 and 10 GiB), and Cap keeps a data set that
// wants more from adding more.

const (
	memMinClass = 12 // 4 KiB: the smallest block, O_DIRECT's alignment
	memMaxClass = 24 // 16 MiB: a slab; larger buffers are plain heap memory
	memSlab     = 1 << memMaxClass

	// MinBlock is the smallest buffer Get hands out (and its alignment).
	MinBlock = 1 << memMinClass
	// MaxBlock is the largest: a slab. Get returns nil for more.
	MaxBlock = memSlab
	// Cap is the most bytes of slabs a Mem maps unless NewLimit says less.
	Cap = 128 << 20
)

// Mem hands out buffers of power-of-two sizes carved from huge-page slabs,
// each aligned to its size (so O_DIRECT takes them), and takes them back
// for reuse. A nil *Mem hands out nothing (the caller uses the heap). Safe
// for concurrent use.
type Mem struct {
	mu    sync.Mutex
	slabs [][]byte                               // each memSlab long and aligned to it
	maps  [][]byte                               // the mappings that hold them
	free  [memMaxClass + 1]map[memBlock]struct{} // the free blocks of each class
	out   map[*byte]memBlock                     // the blocks handed out, by first byte
	limit int64                                  // most bytes of slabs (Cap)
	lower int64                                  // what it took off the heap's limit (heapLimit)
}

// memBlock is a block of 1<<class bytes at off in slabs[slab].
type memBlock struct {
	slab  int32
	class int8
	off   int
}

// New returns an empty Mem that maps at most Cap bytes of slabs.
func New() *Mem { return NewLimit(Cap) }

// NewLimit returns an empty Mem that maps at most limit bytes of slabs
// (rounded down to whole slabs).
func NewLimit(limit int64) *Mem {
	m := &Mem{out: map[*byte]memBlock{}, limit: min(limit, Cap)}
	for c := range m.free {
		m.free[c] = map[memBlock]struct{}{}
	}
	return m
}

func memClass(n int) int {
	if n <= 1<<memMinClass {
		return memMinClass
	}
	return bits.Len(uint(n - 1))
}

// Get returns an empty slice with capacity at least n, aligned to its
// power-of-two size (at least MinBlock), or nil: past the limit, for more
// than MaxBlock bytes, for n = 0 or when m is nil. The caller then uses the
// heap. Give it back with Put, and use it no longer once m is released.
func (m *Mem) Get(n int) []byte {
	c := memClass(n)
	if m == nil || n <= 0 || c > memMaxClass {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := c
	for k <= memMaxClass && len(m.free[k]) == 0 {
		k++
	}
	if k > memMaxClass {
		if !m.grow() {
			return nil
		}
		k = memMaxClass
	}
	var blk memBlock
	for b := range m.free[k] {
		blk = b
		break
	}
	delete(m.free[k], blk)
	for ; k > c; k-- { // split: keep the lower half, free the upper
		blk.class = int8(k - 1)
		m.free[k-1][memBlock{blk.slab, int8(k - 1), blk.off + 1<<(k-1)}] = struct{}{}
	}
	b := m.slabs[blk.slab][blk.off : blk.off+1<<c : blk.off+1<<c]
	m.out[unsafe.SliceData(b)] = blk
	return b[:0]
}

// grow maps one more slab, a free block of memMaxClass; false past the limit.
func (m *Mem) grow() bool {
	if int64(len(m.slabs)+1)*memSlab > m.limit {
		return false
	}
	// Mapped, not taken from the Go heap: fresh pages nobody touched
	// yet (a heap span reused is zeroed, which faults it in with small
	// pages before it can be advised, and the runtime's scavenger splits
	// the huge pages of heap memory again: measured, advised heap slabs
	// took twice the faults). Aligned to its size, so that it is whole
	// huge pages and every block is aligned to its own size.
	raw, err := unix.Mmap(-1, 0, 2*memSlab, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	off := int((p+memSlab-1)&^(memSlab-1) - p)
	slab := raw[off : off+memSlab : off+memSlab]
	hugepage.Advise(slab)
	m.lower += heapLimit.lower(memSlab)
	m.maps = append(m.maps, raw)
	m.slabs = append(m.slabs, slab)
	m.free[memMaxClass][memBlock{int32(len(m.slabs) - 1), memMaxClass, 0}] = struct{}{}
	return true
}

// Put takes back a buffer from Get (any length, the same first byte),
// merging it with its free buddies, and reports whether it did. A slice
// Get did not hand out, or one already given back, is ignored (false): the
// garbage collector has it, or the caller's pool.
func (m *Mem) Put(b []byte) bool {
	if m == nil || cap(b) == 0 {
		return false
	}
	p := unsafe.SliceData(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	blk, ok := m.out[p]
	if !ok {
		return false
	}
	delete(m.out, p)
	for c := int(blk.class); c < memMaxClass; c++ {
		buddy := memBlock{blk.slab, int8(c), blk.off ^ 1<<c}
		if _, free := m.free[c][buddy]; !free {
			break
		}
		delete(m.free[c], buddy)
		blk = memBlock{blk.slab, int8(c + 1), min(blk.off, buddy.off)}
	}
	m.free[blk.class][blk] = struct{}{}
	return true
}

// Bytes is how much memory m has mapped for its slabs.
func (m *Mem) Bytes() int64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.slabs)) * memSlab
}

// Out is how many buffers Get handed out that Put has not taken back.
func (m *Mem) Out() int {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.out)
}

// Release unmaps every slab. Only once nothing uses its buffers: every
// user sharing m has ended (a restore's FileGate.memFor, an L2 relay or
// pass). It may be called again; m can be used again afterwards.
func (m *Mem) Release() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.maps {
		_ = unix.Munmap(r)
	}
	heapLimit.release(m.lower)
	m.lower = 0
	m.maps, m.slabs, m.out = nil, nil, map[*byte]memBlock{}
	for c := range m.free {
		m.free[c] = map[memBlock]struct{}{}
	}
}
