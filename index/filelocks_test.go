package index

import (
	"path/filepath"
	"runtime"
	"testing"
)

func fileLockEntries() int {
	fileLocks.Lock()
	defer fileLocks.Unlock()
	return len(fileLocks.m)
}

// TestFileLocksHeldByHandles: two handles on one cache file share one mutex
// (goroutines of this process hand over without bbolt's 50 ms polling), and
// the table of mutexes forgets a path once no handle on it is left, so it
// never grows with the paths a long-lived process has opened.
func TestFileLocksHeldByHandles(t *testing.T) {
	dir := t.TempDir()
	before := fileLockEntries()
	a, err := Open(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := Open(filepath.Join(dir, ".", "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	if a.mu != a2.mu {
		t.Fatal("two handles on one cache file got different mutexes")
	}
	for i := range 50 {
		if _, err := Open(filepath.Join(dir, "many", string(rune('a'+i%26))+string(rune('a'+i/26))+".db")); err != nil {
			t.Fatal(err)
		}
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(a2)
	a, a2 = nil, nil
	// Cleanups run on their own goroutine after a collection: collect until
	// they have (a generous bound, no clock).
	for i := 0; i < 1000 && fileLockEntries() > before; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if n := fileLockEntries(); n > before {
		t.Fatalf("%d entries left after the handles were dropped, want at most %d", n, before)
	}
	// A path opened again after its entry went gets a fresh mutex that works.
	b, err := Open(filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	if b.mu != lockFor(b.path) {
		t.Fatal("a handle's mutex is not the table's")
	}
}
