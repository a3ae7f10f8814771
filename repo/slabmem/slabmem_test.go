package slabmem

import (
	"bytes"
	"math"
	"runtime/debug"
	"testing"
	"unsafe"
)

// TestMemCarvesAlignedAndReuses: buffers are blocks of a power of
// two, aligned to it (O_DIRECT takes them), given back and handed out
// again; blocks split for small buffers merge again when all are back; a
// slice the arena did not hand out, an empty one and a second put of the
// same buffer are ignored; past the limit get says so (nil) and the caller
// uses the heap; release unmaps and starts over.
func TestMemCarvesAlignedAndReuses(t *testing.T) {
	m := NewLimit(2 * memSlab)
	addr := func(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

	a := m.Get(100_000) // 128 KiB
	if a == nil || len(a) != 0 || cap(a) != 128<<10 || addr(a)%(128<<10) != 0 {
		t.Fatalf("get(100000): len %d cap %d at %#x, want an empty 128 KiB buffer aligned to 128 KiB", len(a), cap(a), addr(a))
	}
	a = append(a, bytes.Repeat([]byte{7}, 100_000)...)
	b := m.Get(1)
	if cap(b) != MinBlock || addr(b)%MinBlock != 0 || addr(b) == addr(a) {
		t.Fatalf("get(1): cap %d at %#x, want one aligned block apart from %#x", cap(b), addr(b), addr(a))
	}
	m.Put(a[:10]) // any length, the same first byte
	c := m.Get(128 << 10)
	if addr(c) != addr(a) {
		t.Fatalf("get after put: %#x, want the buffer given back (%#x)", addr(c), addr(a))
	}
	if m.Put(make([]byte, 4096)) || m.Put(nil) { // not handed out
		t.Fatal("Put took a slice Get did not hand out")
	}
	if !m.Put(b) || m.Put(b) { // twice: once only
		t.Fatal("Put of a buffer handed out: want true once, then false")
	}
	if d, e := m.Get(MinBlock), m.Get(MinBlock); addr(d) != addr(b) || addr(e) == addr(b) {
		t.Fatalf("after a double put the buffer was handed out twice (%#x %#x, put %#x)", addr(d), addr(e), addr(b))
	} else {
		m.Put(d)
		m.Put(e)
	}
	if got := m.Get(memSlab + 1); got != nil { // beyond the largest class
		t.Fatalf("get(%d) = cap %d, want nil", memSlab+1, cap(got))
	}
	var big [][]byte
	for range 3 { // the first slab's upper half, then a second slab
		g := m.Get(8 << 20)
		if cap(g) != 8<<20 || addr(g)%(8<<20) != 0 {
			t.Fatalf("get(8 MiB): cap %d at %#x", cap(g), addr(g))
		}
		big = append(big, g)
	}
	if got := m.Get(8 << 20); got != nil { // a third slab: past the limit
		t.Fatalf("get(8 MiB) past the limit = cap %d, want nil", cap(got))
	}
	if n := m.Bytes(); n != 2*memSlab {
		t.Fatalf("slabs hold %d bytes, want %d", n, 2*memSlab)
	}
	m.Put(c)
	for _, g := range big {
		m.Put(g)
	}
	if n := len(m.free[memMaxClass]); n != 2 || len(m.out) != 0 || m.Out() != 0 {
		t.Fatalf("everything given back: %d whole free slabs, %d buffers out; want 2 and 0", n, len(m.out))
	}
	m.Release()
	m.Release()
	if n := m.Bytes(); n != 0 {
		t.Fatalf("after release: %d bytes mapped", n)
	}
	if g := m.Get(1 << 20); g == nil || cap(g) != 1<<20 {
		t.Fatalf("get after release: cap %d, want a fresh 1 MiB buffer", cap(g))
	}
	m.Release()
	var nilMem *Mem
	if nilMem.Get(10) != nil {
		t.Fatal("a nil Mem handed out a buffer")
	}
	if nilMem.Put(make([]byte, 10)) || nilMem.Bytes() != 0 || nilMem.Out() != 0 {
		t.Fatal("a nil Mem took a buffer or holds memory")
	}
	nilMem.Release()
	if l := NewLimit(1 << 20); l.Get(4096) != nil { // less than a slab: the heap's
		t.Fatal("a Mem limited to less than a slab mapped one")
	}
}

func TestMemLowersTheHeapLimitWhileMapped(t *testing.T) {
	old := debug.SetMemoryLimit(200 << 20)
	defer debug.SetMemoryLimit(old)
	m := New()
	a, b := m.Get(MaxBlock), m.Get(MaxBlock) // two slabs
	if a == nil || b == nil {
		t.Skip("no anonymous mappings here")
	}
	if got := debug.SetMemoryLimit(-1); got != 200<<20-2*MaxBlock {
		t.Fatalf("limit with two slabs mapped: %d, want %d", got, 200<<20-2*MaxBlock)
	}
	// A second Mem shifts it further, down to minHeapLimit and no lower.
	m2 := New()
	for range 8 {
		m2.Get(MaxBlock)
	}
	if got := debug.SetMemoryLimit(-1); got != minHeapLimit {
		t.Fatalf("limit with ten slabs mapped: %d, want the floor %d", got, minHeapLimit)
	}
	m.Release()
	if got := debug.SetMemoryLimit(-1); got != minHeapLimit+2*MaxBlock {
		t.Fatalf("limit after the first Mem's release: %d, want %d", got, minHeapLimit+2*MaxBlock)
	}
	m2.Release()
	m2.Release() // twice: gives back nothing more
	if got := debug.SetMemoryLimit(-1); got != 200<<20 {
		t.Fatalf("limit after both releases: %d, want 200 MiB again", got)
	}
	// No limit set: left alone.
	debug.SetMemoryLimit(math.MaxInt64)
	m3 := New()
	m3.Get(MaxBlock)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("no limit became %d", got)
	}
	m3.Release()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("no limit became %d after release", got)
	}
}
