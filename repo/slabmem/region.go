package slabmem

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo/hugepage"
)

// Region is one buffer mapped on its own, outside the Go heap, for a buffer
// of a size no power-of-two class fits (a pack being written: its target
// plus room for the header) that its owner reuses many times: a first
// backup fills some 70 packs per GiB, and a pack buffer taken from the heap
// was zeroed (0.24 CPU s per GiB) and faulted in again after the scavenger
// returned it each time. Like a Mem's slabs it starts at a huge-page
// boundary, is advised for huge pages and takes its size off the heap's soft
// limit until Unmap (limit.go). The owner unmaps it once nothing refers to
// its bytes.
type Region struct {
	raw   []byte // the mapping
	buf   []byte // n bytes of it from a 2 MiB boundary
	lower int64  // what it took off the heap's limit
}

// hugePage is the alignment of a Region's buffer.
const hugePage = 2 << 20

// MapRegion maps a Region of at least n bytes (rounded up to MinBlock, so
// also aligned for O_DIRECT), or returns nil when the mapping fails or n is
// not positive: the caller then uses the heap.
func MapRegion(n int) *Region {
	if n <= 0 {
		return nil
	}
	n = (n + MinBlock - 1) &^ (MinBlock - 1)
	// Only the address space past n up to the next huge page is mapped for
	// the alignment; it is never touched, so it takes no memory.
	raw, err := unix.Mmap(-1, 0, n+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	off := int((p+hugePage-1)&^(hugePage-1) - p)
	r := &Region{raw: raw, buf: raw[off : off+n : off+n]}
	hugepage.Advise(r.buf)
	r.lower = heapLimit.lower(int64(n))
	return r
}

// Bytes is the Region's buffer, its full length; nil once unmapped.
func (r *Region) Bytes() []byte { return r.buf }

// Unmap gives the memory back and the limit it took. Only once nothing
// refers to its bytes; a second call does nothing.
func (r *Region) Unmap() {
	if r == nil || r.raw == nil {
		return
	}
	_ = unix.Munmap(r.raw)
	heapLimit.raise(r.lower)
	r.raw, r.buf, r.lower = nil, nil, 0
}
