package restore

import (
	"bytes"
	"testing"
	"unsafe"
)

// TestRestoreMemCarvesAlignedAndReuses: buffers are blocks of a power of
// two, aligned to it (O_DIRECT takes them), given back and handed out
// again; blocks split for small buffers merge again when all are back; a
// slice the arena did not hand out, an empty one and a second put of the
// same buffer are ignored; past the limit get says so (nil) and the caller
// uses the heap; release unmaps and starts over.
func TestRestoreMemCarvesAlignedAndReuses(t *testing.T) {
	m := newRestoreMem()
	m.limit = 2 * memSlab
	addr := func(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

	a := m.get(100_000) // 128 KiB
	if a == nil || len(a) != 0 || cap(a) != 128<<10 || addr(a)%(128<<10) != 0 {
		t.Fatalf("get(100000): len %d cap %d at %#x, want an empty 128 KiB buffer aligned to 128 KiB", len(a), cap(a), addr(a))
	}
	a = append(a, bytes.Repeat([]byte{7}, 100_000)...)
	b := m.get(1)
	if cap(b) != writeAlign || addr(b)%writeAlign != 0 || addr(b) == addr(a) {
		t.Fatalf("get(1): cap %d at %#x, want one aligned block apart from %#x", cap(b), addr(b), addr(a))
	}
	m.put(a[:10]) // any length, the same first byte
	c := m.get(128 << 10)
	if addr(c) != addr(a) {
		t.Fatalf("get after put: %#x, want the buffer given back (%#x)", addr(c), addr(a))
	}
	m.put(make([]byte, 4096)) // not handed out
	m.put(nil)
	m.put(b)
	m.put(b) // twice: once only
	if d, e := m.get(writeAlign), m.get(writeAlign); addr(d) != addr(b) || addr(e) == addr(b) {
		t.Fatalf("after a double put the buffer was handed out twice (%#x %#x, put %#x)", addr(d), addr(e), addr(b))
	} else {
		m.put(d)
		m.put(e)
	}
	if got := m.get(memSlab + 1); got != nil { // beyond the largest class
		t.Fatalf("get(%d) = cap %d, want nil", memSlab+1, cap(got))
	}
	var big [][]byte
	for range 3 { // the first slab's upper half, then a second slab
		g := m.get(8 << 20)
		if cap(g) != 8<<20 || addr(g)%(8<<20) != 0 {
			t.Fatalf("get(8 MiB): cap %d at %#x", cap(g), addr(g))
		}
		big = append(big, g)
	}
	if got := m.get(8 << 20); got != nil { // a third slab: past the limit
		t.Fatalf("get(8 MiB) past the limit = cap %d, want nil", cap(got))
	}
	if n := m.bytes(); n != 2*memSlab {
		t.Fatalf("slabs hold %d bytes, want %d", n, 2*memSlab)
	}
	m.put(c)
	for _, g := range big {
		m.put(g)
	}
	if n := len(m.free[memMaxClass]); n != 2 || len(m.out) != 0 {
		t.Fatalf("everything given back: %d whole free slabs, %d buffers out; want 2 and 0", n, len(m.out))
	}
	m.release()
	m.release()
	if n := m.bytes(); n != 0 {
		t.Fatalf("after release: %d bytes mapped", n)
	}
	if g := m.get(1 << 20); g == nil || cap(g) != 1<<20 {
		t.Fatalf("get after release: cap %d, want a fresh 1 MiB buffer", cap(g))
	}
	m.release()
	var nilMem *restoreMem
	if nilMem.get(10) != nil {
		t.Fatal("a nil restoreMem handed out a buffer")
	}
	nilMem.put(make([]byte, 10))
	nilMem.release()
}

// TestFileGateSharesMemUntilLastRelease: the restores of one gate share
// their buffers, and only the last release unmaps them.
func TestFileGateSharesMemUntilLastRelease(t *testing.T) {
	g := NewFileGate(4)
	m1, rel1 := g.memFor()
	m2, rel2 := g.memFor()
	if m1 != m2 {
		t.Fatal("two restores through one gate got separate buffers")
	}
	b := m1.get(64 << 10)
	rel1()
	if m2.bytes() == 0 {
		t.Fatal("the first release unmapped buffers the second restore still uses")
	}
	b = append(b, 1) // still mapped: must not fault
	m2.put(b)
	rel2()
	if n := m2.bytes(); n != 0 {
		t.Fatalf("after the last release %d bytes are still mapped", n)
	}
	if m3, rel3 := g.memFor(); m3 == m1 {
		t.Fatal("a restore after the last release got the released buffers")
	} else {
		rel3()
	}
	var none *FileGate
	m4, rel4 := none.memFor()
	if m4 == nil {
		t.Fatal("a restore without a gate got no buffers")
	}
	rel4()
}
