//go:build linux

package backup

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// prefetchTree makes a tree for Prefetch: small files at two depths, one
// file too large for a small-file read, an empty file, an excluded file, a
// FIFO (whose open would block) and a symlink to a file (not followed).
func prefetchTree(t *testing.T) (root string, small []string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "src")
	write := func(rel string, n int) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + len(rel))
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small = []string{
		write("a.txt", 3000),
		write("b/c.txt", 100),
		write("b/d/e.txt", 20000),
		write("z/y.txt", 5000),
	}
	write("big.bin", smallFileMax)
	write("empty", 0)
	write("b/skip.log", 400)
	if err := syscall.Mkfifo(filepath.Join(root, "b", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "a.txt"), filepath.Join(root, "z", "link")); err != nil {
		t.Fatal(err)
	}
	slices.Sort(small)
	return root, small
}

// TestPrefetchReadsTheWalksSmallFiles: a prefetch run to its end asks the
// kernel to read exactly the small regular files the walk will read (not
// the large one, the empty one, the excluded one, the FIFO or the
// symlink), each for its whole size, and the pages are then in the page
// cache where the file system keeps them (not on tmpfs, which never drops
// them).
func TestPrefetchReadsTheWalksSmallFiles(t *testing.T) {
	root, want := prefetchTree(t)
	opts := BackupOptions{Paths: []string{root}}
	if err := opts.Exclude.Add([]string{"*.log"}, false); err != nil {
		t.Fatal(err)
	}
	evictable := true
	for _, p := range want {
		evictable = evictable && dropPages(t, p)
	}
	p := newPrefetcher(opts)
	if p == nil {
		t.Fatal("newPrefetcher: nil for a path backup")
	}
	var mu sync.Mutex
	var got []string
	sizes := map[string]int64{}
	p.readAhead = func(path string, size int64) {
		mu.Lock()
		got = append(got, path)
		sizes[path] = size
		mu.Unlock()
		readAhead(path, size)
	}
	p.start()()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("read ahead %q, want %q", got, want)
	}
	for _, path := range want {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if sizes[path] != fi.Size() {
			t.Errorf("%s read ahead for %d bytes, want its size %d", path, sizes[path], fi.Size())
		}
	}
	if !evictable {
		t.Log("the file system keeps every page (tmpfs?): residency not checked")
		return
	}
	// The reads are queued when readAhead returns, not done: wait for them.
	deadline := time.Now().Add(30 * time.Second)
	for _, path := range want {
		for !resident(t, path) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not in the page cache 30 s after it was read ahead", path)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// dropPages asks the kernel to drop path's pages from the page cache and
// reports whether it did.
func dropPages(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	return !resident(t, path)
}

// resident reports whether every page of path is in the page cache.
func resident(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore %s: %v", path, e)
	}
	for _, v := range vec {
		if v&1 == 0 {
			return false
		}
	}
	return true
}

// TestPrefetchStops: stop returns with every goroutine of the prefetch
// ended, whether it is called at once or after the walk is done, and a
// second call returns too; the prefetch stops at its bounds; and the
// backups it does not apply to (a space, stdin, a dry run, a missing
// source) start nothing.
func TestPrefetchStops(t *testing.T) {
	root, _ := prefetchTree(t)
	stop := Prefetch(BackupOptions{Paths: []string{root}})
	stop()
	stop()
	done := Prefetch(BackupOptions{Paths: []string{root}})
	time.Sleep(10 * time.Millisecond)
	done()

	p := newPrefetcher(BackupOptions{Paths: []string{root}})
	var n int
	var mu sync.Mutex
	p.readAhead = func(string, int64) {
		mu.Lock()
		n++
		mu.Unlock()
	}
	p.files.Store(prefetchFiles)
	p.start()()
	if n != 0 {
		t.Errorf("%d files read ahead past prefetchFiles", n)
	}

	for name, o := range map[string]BackupOptions{
		"space":   {Space: "s1", DataDir: root},
		"stdin":   {Stdin: os.Stdin, StdinName: "x", Paths: []string{root}},
		"dry run": {Paths: []string{root}, DryRun: true},
		"missing": {Paths: []string{filepath.Join(root, "nothing")}},
	} {
		if p := newPrefetcher(o); p != nil {
			t.Errorf("%s: a prefetcher, want none", name)
		}
	}
}
