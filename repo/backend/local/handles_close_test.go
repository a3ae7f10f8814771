package local

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openFDs counts this process's open file descriptors on files under dir
// (the repository: the packs the Backend holds), or skips the test where
// /proc/self/fd does not list them. Counting every descriptor was flaky: a
// file another test leaked is closed by its finalizer whenever a collection
// runs, and the count then dropped by one in the middle of this test (CI,
// -race, load 5-13).
func openFDs(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count open files: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, dir+"/") {
			n++
		}
	}
	return n
}

// Close releases every pack the Backend keeps open; one still being read is
// released when its reader closes; and the Backend still reads afterwards,
// keeping nothing open.
func TestCloseReleasesCachedPacks(t *testing.T) {
	b, c := backendWithCache(t, 8)
	const packs = 5
	contents := make([][]byte, packs)
	// Written through another Backend, closed (with the ring of its
	// fsyncs) before the files are counted.
	w, err := Open(b.Location())
	if err != nil {
		t.Fatal(err)
	}
	for i := range contents {
		contents[i] = randBytes(uint64(i+20), 4000)
		writeFile(t, w, fmt.Sprintf("data/0%d/pack", i), contents[i])
	}
	w.Close()
	dir, err := filepath.EvalSymlinks(b.Location())
	if err != nil {
		t.Fatal(err)
	}
	before := openFDs(t, dir)
	for i := range packs {
		readAll(t, b, fmt.Sprintf("data/0%d/pack", i), 0, 100)
	}
	if got := openFDs(t, dir); got != before+packs {
		t.Fatalf("%d packs read and cached: %d files open, want %d", packs, got, before+packs)
	}
	busy, err := b.Open(t.Context(), "data/00/pack", 0, -1)
	if err != nil {
		t.Fatal(err)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := openFDs(t, dir); got != before+1 {
		t.Errorf("after Close, one pack still being read: %d files open, want %d", got, before+1)
	}
	if open, _, _ := c.stats(); open != 0 {
		t.Errorf("after Close: %d handles cached, want 0", open)
	}
	got, err := io.ReadAll(busy)
	if err != nil || !bytes.Equal(got, contents[0]) {
		t.Fatalf("reader open across Close: %d bytes, %v", len(got), err)
	}
	busy.Close()
	if got := openFDs(t, dir); got != before {
		t.Errorf("after the last reader closed: %d files open, want %d", got, before)
	}

	// Still usable, uncached: every read opens and closes its pack.
	for i := range packs {
		if got := readAll(t, b, fmt.Sprintf("data/0%d/pack", i), 1000, 500); !bytes.Equal(got, contents[i][1000:1500]) {
			t.Fatalf("pack %d after Close: wrong bytes", i)
		}
	}
	if got := openFDs(t, dir); got != before {
		t.Errorf("reads after Close left files open: %d, want %d", got, before)
	}
	if open, _, _ := c.stats(); open != 0 {
		t.Errorf("reads after Close cached %d handles", open)
	}
	if err := b.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
}

// Two Backends on one directory keep their own caches: closing one leaves
// the other's open packs alone.
func TestBackendsDoNotShareHandles(t *testing.T) {
	if maxHandles == 0 {
		t.Skip("no handle cache on this platform")
	}
	one := newBackend(t)
	two, err := Open(one.Location())
	if err != nil {
		t.Fatal(err)
	}
	defer two.Close()
	if one.handles == two.handles {
		t.Fatal("two Backends share one handle cache")
	}
	if one.handles.limit != maxHandles || two.handles.limit != maxHandles {
		t.Errorf("cache limits %d and %d, want maxHandles (%d)", one.handles.limit, two.handles.limit, maxHandles)
	}
	data := randBytes(30, 3000)
	writeFile(t, one, "data/aa/pack", data)
	readAll(t, one, "data/aa/pack", 0, 10)
	readAll(t, two, "data/aa/pack", 0, 10)
	readAll(t, two, "data/aa/pack", 10, 10)
	if open, opens, hits := one.handles.stats(); open != 1 || opens != 1 || hits != 0 {
		t.Errorf("first Backend: open %d, opens %d, hits %d; want 1, 1, 0", open, opens, hits)
	}
	if open, opens, hits := two.handles.stats(); open != 1 || opens != 1 || hits != 1 {
		t.Errorf("second Backend: open %d, opens %d, hits %d; want 1, 1, 1", open, opens, hits)
	}
	one.Close()
	if open, _, _ := two.handles.stats(); open != 1 {
		t.Errorf("closing the first Backend emptied the second's cache (%d open)", open)
	}
	if got := readAll(t, two, "data/aa/pack", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("second Backend: wrong bytes")
	}
	if _, _, hits := two.handles.stats(); hits != 2 {
		t.Errorf("second Backend after the first closed: %d hits, want 2", hits)
	}
}
