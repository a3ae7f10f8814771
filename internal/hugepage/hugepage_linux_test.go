package hugepage

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// vmFlags returns the VmFlags of the mapping of /proc/self/smaps that
// holds address p.
func vmFlags(t *testing.T, p uintptr) []string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 && strings.Contains(line[:strings.IndexByte(line, ' ')], "-") {
			in = lo <= p && p < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("no mapping holds %#x", p)
	return nil
}

func has(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// requireTHP skips where the kernel has no transparent huge pages at all
// (madvise(MADV_HUGEPAGE) fails there and Advise is a no-op by design).
func requireTHP(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("kernel without transparent huge pages")
	}
}

// TestAdviseMarksAlignedInterior: the 2 MiB pages wholly inside a buffer
// are advised (VmFlags "hg"), and the bytes around them are not: advice
// never reaches memory outside the buffer (other Go objects).
func TestAdviseMarksAlignedInterior(t *testing.T) {
	requireTHP(t)
	b := make([]byte, 9<<20)
	Advise(b)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	beg := (p + Size - 1) &^ (Size - 1)
	end := (p + uintptr(len(b))) &^ (Size - 1)
	if end-beg < 3*Size {
		t.Fatalf("a 9 MiB buffer holds %d aligned huge pages, want >= 3", (end-beg)/Size)
	}
	for _, q := range []uintptr{beg, beg + Size, end - 1} {
		if f := vmFlags(t, q); !has(f, "hg") {
			t.Errorf("%#x in the aligned interior: VmFlags %v, want hg", q, f)
		}
	}
	if beg > p {
		if f := vmFlags(t, beg-1); has(f, "hg") {
			t.Errorf("%#x before the aligned interior is advised too: %v", beg-1, f)
		}
	}
	if f := vmFlags(t, end); has(f, "hg") && end < p+uintptr(len(b)) {
		t.Errorf("%#x after the aligned interior is advised too: %v", end, f)
	}
	for i := range b { // the buffer is still ordinary writable memory
		b[i] = byte(i)
	}
	if b[len(b)-1] != byte(len(b)-1) {
		t.Fatal("buffer lost a write")
	}
}

// TestAdviseLeavesPartialPages: a buffer that holds no whole aligned huge
// page (one byte short of one, or below MinSize) is not advised, and nil or
// empty ones are ignored. A fresh anonymous mapping, not the Go heap, so
// that no earlier buffer's advice is on the range.
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
	a := int((base+Size-1)&^(Size-1) - base) // first aligned offset in m
	Advise(m[a : a+Size-1])                  // one byte short of a whole page
	Advise(m[a+1 : a+Size+1])                // a page's length, not aligned
	for _, off := range []int{a, a + Size - 2, a + Size} {
		if f := vmFlags(t, base+uintptr(off)); has(f, "hg") {
			t.Fatalf("offset %d advised for a buffer without a whole huge page: %v", off, f)
		}
	}
	Advise(m[a : a+Size]) // exactly one aligned page
	if f := vmFlags(t, base+uintptr(a)); !has(f, "hg") {
		t.Fatalf("an exactly aligned huge page is not advised: %v", f)
	}
}
