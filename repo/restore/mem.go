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
// slabs, and by memCap: past it a buffer is plain heap memory, as before.

const (
	memMinClass = 12       // 4 KiB: the smallest buffer carved, O_DIRECT's alignment
	memMaxClass = 24       // 16 MiB: larger buffers are plain heap memory
	memSlab     = 16 << 20 // bytes allocated at once for the buffers of one class
	memCap      = 160 << 20
)

// restoreMem hands out buffers of power-of-two sizes carved from huge-page
// slabs, each aligned to its size (so O_DIRECT takes them), and takes them
// back for reuse. A nil *restoreMem hands out plain heap memory. Safe for
// concurrent use.
type restoreMem struct {
	mu    sync.Mutex
	free  [memMaxClass + 1][][]byte
	bufs  map[*byte]memBuf // every buffer carved, by its first byte
	slabs [][]byte
	bytes int64 // of slabs
	limit int64 // most bytes of slabs (memCap)
}

// memBuf is a carved buffer's class and whether it is handed out.
type memBuf struct {
	class int8
	out   bool
}

func newRestoreMem() *restoreMem { return &restoreMem{bufs: map[*byte]memBuf{}, limit: memCap} }

func memClass(n int) int {
	if n <= 1<<memMinClass {
		return memMinClass
	}
	return bits.Len(uint(n - 1))
}

// get returns an empty slice with capacity at least n, aligned to
// writeAlign when it is carved (always, below memCap and for n up to 16
// MiB). It is plain heap memory otherwise: nil if m is nil or n is 0.
func (m *restoreMem) get(n int) []byte {
	c := memClass(n)
	if m == nil || n <= 0 || c > memMaxClass {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.free[c]) == 0 && !m.grow(c) {
		return nil
	}
	k := len(m.free[c]) - 1
	b := m.free[c][k]
	m.free[c][k] = nil
	m.free[c] = m.free[c][:k]
	m.bufs[unsafe.SliceData(b)] = memBuf{int8(c), true}
	return b[:0]
}

// grow carves a new slab into buffers of class c; false past memCap.
func (m *restoreMem) grow(c int) bool {
	size := max(memSlab, 1<<c)
	if m.bytes+int64(size) > m.limit {
		return false
	}
	// Mapped, not taken from the Go heap: fresh pages nobody touched
	// yet (a heap span reused is zeroed, which faults it in with small
	// pages before it can be advised, and the runtime's scavenger splits
	// the huge pages of heap memory again: measured, advised heap slabs
	// took twice the faults). Aligned to hugepage.Size, so that the whole
	// slab can be huge pages, and every buffer carved from it to its own
	// size.
	raw, err := unix.Mmap(-1, 0, size+hugepage.Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	off := int((p+hugepage.Size-1)&^(hugepage.Size-1) - p)
	slab := raw[off : off+size : off+size]
	hugepage.Advise(slab)
	m.slabs = append(m.slabs, raw)
	m.bytes += int64(size)
	for o := size - 1<<c; o >= 0; o -= 1 << c { // the first piece is handed out first
		b := slab[o : o+1<<c : o+1<<c]
		m.free[c] = append(m.free[c], b)
		m.bufs[unsafe.SliceData(b)] = memBuf{int8(c), false}
	}
	return true
}

// put takes back a buffer from get (any length, the same first byte). A
// slice get did not carve, or one already given back, is ignored: the
// garbage collector has it.
func (m *restoreMem) put(b []byte) {
	if m == nil || cap(b) == 0 {
		return
	}
	p := unsafe.SliceData(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.bufs[p]
	if !ok || !mb.out {
		return
	}
	m.bufs[p] = memBuf{mb.class, false}
	c := int(mb.class)
	m.free[c] = append(m.free[c], unsafe.Slice(p, 1<<c)[:0])
}

// release unmaps every slab. Only once nothing uses its buffers: every
// restore sharing m has ended (FileGate.mem). It may be called again.
func (m *restoreMem) release() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.slabs {
		_ = unix.Munmap(s)
	}
	m.slabs, m.bytes, m.bufs = nil, 0, map[*byte]memBuf{}
	m.free = [memMaxClass + 1][][]byte{}
}
