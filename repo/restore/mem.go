package restore

import (
	"math/bits"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo/hugepage"
)

// A restore's buffers come from memory of its own, backed by huge pages.
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
// through their FileGate; when the last of them ends the slabs are unmapped.
//
// The memory is bounded by what the restore holds at once (the file gate's
// files, each within restoreAhead and its write buffers) rounded up to
// slabs, and by memCap: past it a buffer is plain heap memory (a fresh
// allocation, not the pools' reused buffers). The slabs are outside the Go
// heap's soft limit (cmd/memento's defaultMemoryLimit), so memCap is what
// they may add to it: a data dir's restore maps 96-112 MiB (1 and 10 GiB,
// docs/benchmarks.md, session 12), and 10 GiB restores peaked at 264-285
// MiB of RSS with them, under the 300 MiB bound; memCap keeps a data set
// that wants more from adding more.

const (
	memMinClass = 12 // 4 KiB: the smallest block, O_DIRECT's alignment
	memMaxClass = 24 // 16 MiB: a slab; larger buffers are plain heap memory
	memSlab     = 1 << memMaxClass
	memCap      = 128 << 20 // most bytes of slabs
)

// restoreMem hands out buffers of power-of-two sizes carved from huge-page
// slabs, each aligned to its size (so O_DIRECT takes them), and takes them
// back for reuse. A nil *restoreMem hands out plain heap memory. Safe for
// concurrent use.
type restoreMem struct {
	mu    sync.Mutex
	slabs [][]byte                               // each memSlab long and aligned to it
	maps  [][]byte                               // the mappings that hold them
	free  [memMaxClass + 1]map[memBlock]struct{} // the free blocks of each class
	out   map[*byte]memBlock                     // the blocks handed out, by first byte
	limit int64                                  // most bytes of slabs (memCap)
}

// memBlock is a block of 1<<class bytes at off in slabs[slab].
type memBlock struct {
	slab  int32
	class int8
	off   int
}

func newRestoreMem() *restoreMem {
	m := &restoreMem{out: map[*byte]memBlock{}, limit: memCap}
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

// get returns an empty slice with capacity at least n, aligned to its
// power-of-two size (at least writeAlign), or nil: past memCap, for more
// than memSlab bytes, for n = 0 or when m is nil. The caller then uses the
// heap.
func (m *restoreMem) get(n int) []byte {
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

// grow maps one more slab, a free block of memMaxClass; false past memCap.
func (m *restoreMem) grow() bool {
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
	m.maps = append(m.maps, raw)
	m.slabs = append(m.slabs, slab)
	m.free[memMaxClass][memBlock{int32(len(m.slabs) - 1), memMaxClass, 0}] = struct{}{}
	return true
}

// put takes back a buffer from get (any length, the same first byte),
// merging it with its free buddies. A slice get did not hand out, or one
// already given back, is ignored: the garbage collector has it.
func (m *restoreMem) put(b []byte) {
	if m == nil || cap(b) == 0 {
		return
	}
	p := unsafe.SliceData(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	blk, ok := m.out[p]
	if !ok {
		return
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
}

// bytes is how much memory m has mapped for its slabs.
func (m *restoreMem) bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.slabs)) * memSlab
}

// release unmaps every slab. Only once nothing uses its buffers: every
// restore sharing m has ended (FileGate.memFor). It may be called again.
func (m *restoreMem) release() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.maps {
		_ = unix.Munmap(r)
	}
	m.maps, m.slabs, m.out = nil, nil, map[*byte]memBlock{}
	for c := range m.free {
		m.free[c] = map[memBlock]struct{}{}
	}
}
