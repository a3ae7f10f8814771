package hugepage

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RequireTHP skips where the kernel has no transparent huge pages at all
// (madvise(MADV_HUGEPAGE) fails there and Advise is a no-op by design);
// in CI nothing skips.
func requireTHP(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("kernel without transparent huge pages")
	}
}

func advised(t *testing.T, b []byte) bool {
	t.Helper()
	ok, any, err := Advised(b)
	if err != nil {
		t.Fatal(err)
	}
	if !any {
		t.Fatalf("a %d-byte range holds no aligned huge page", len(b))
	}
	return ok
}

// TestAdviseMarksAlignedInterior: Advise marks the 2 MiB pages wholly
// inside a buffer (VmFlags "hg") and nothing around them, the buffer stays
// ordinary memory, and Unadvise takes the advice back. A fresh anonymous
// mapping, not the Go heap, so that no earlier buffer's advice is on the
// range.
func TestAdviseMarksAlignedInterior(t *testing.T) {
	requireTHP(t)
	m, err := unix.Mmap(-1, 0, 8*Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	base := uintptr(unsafe.Pointer(&m[0]))
	a := int((base+Size-1)&^(Size-1) - base) // first aligned offset in m
	b := m[a+100 : a+4*Size+100]             // 3 whole aligned pages inside
	Advise(b)
	if !advised(t, m[a+Size:a+4*Size]) {
		t.Fatal("the aligned pages inside the buffer are not advised")
	}
	if advised(t, m[a:a+Size]) {
		t.Fatal("the page holding the buffer's unaligned start is advised")
	}
	if advised(t, m[a+4*Size:a+5*Size]) {
		t.Fatal("the page holding the buffer's unaligned end is advised")
	}
	for i := range b {
		b[i] = byte(i)
	}
	for i := range b {
		if b[i] != byte(i) {
			t.Fatalf("byte %d reads %d after writing %d", i, b[i], byte(i))
		}
	}
	Unadvise(b)
	if advised(t, m[a+Size:a+2*Size]) {
		t.Fatal("Unadvise left the advice on")
	}
}

// TestAdviseLeavesPartialPages: a buffer that holds no whole aligned huge
// page (one byte short of one, or a page's length unaligned) is not
// advised, and nil or empty ones are ignored.
func TestAdviseLeavesPartialPages(t *testing.T) {
	requireTHP(t)
	m, err := unix.Mmap(-1, 0, 4*Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	Advise(nil)
	Advise(m[:0])
	base := uintptr(unsafe.Pointer(&m[0]))
	a := int((base+Size-1)&^(Size-1) - base)
	Advise(m[a : a+Size-1])   // one byte short of a whole page
	Advise(m[a+1 : a+Size+1]) // a page's length, not aligned
	if advised(t, m[a:a+Size]) || advised(t, m[a+Size:a+2*Size]) {
		t.Fatal("a buffer without a whole aligned huge page was advised")
	}
	if ok, any, _ := Advised(m[a+1 : a+Size+1]); ok || any {
		t.Fatalf("Advised of a range without a whole aligned page = %v, %v", ok, any)
	}
	Advise(m[a : a+Size]) // exactly one aligned page
	if !advised(t, m[a:a+Size]) {
		t.Fatal("an exactly aligned huge page is not advised")
	}
}
