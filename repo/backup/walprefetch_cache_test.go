//go:build linux

package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/walreplay"
)

// TestPrefetchWALFillsPageCache: readAhead really puts a segment's pages in
// the page cache (mincore), where they were evicted
// before. On a file system whose pages cannot be evicted (tmpfs) only the
// second half of that can be told, and is.
func TestPrefetchWALFillsPageCache(t *testing.T) {
	const size = 4 << 20
	p := filepath.Join(t.TempDir(), "wal-0000000000000001.log")
	if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	evicted := resident(t, f, size) == 0
	if !evicted {
		t.Logf("%s: pages not evictable here (tmpfs?): checking only that they are all resident after", p)
	}
	<-prefetchWAL(context.Background(), []walreplay.SegmentInfo{{Path: p, Size: size}}, size/2, readAhead())
	if n := resident(t, f, size); evicted && n < size/2 || !evicted && n != size {
		t.Fatalf("%d of %d bytes resident after asking for the first %d (evicted before: %v)", n, size, size/2, evicted)
	}
	<-prefetchWAL(context.Background(), []walreplay.SegmentInfo{{Path: p, Size: size}}, size, readAhead())
	if n := resident(t, f, size); n != size {
		t.Fatalf("%d of %d bytes resident after asking for all", n, size)
	}
}

// resident returns how many of the first size bytes of f are in the page
// cache.
func resident(t *testing.T, f *os.File, size int) int {
	t.Helper()
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	ps := os.Getpagesize()
	vec := make([]byte, (size+ps-1)/ps)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		if v&1 != 0 {
			n += ps
		}
	}
	return n
}
