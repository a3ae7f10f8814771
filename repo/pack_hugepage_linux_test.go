package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"memento/repo/hugepage"
)

// TestPackBuffersHugePages: a new pack buffer is advised for transparent
// huge pages before it is filled, a reused one keeps its advice for the
// next pack, and one the pool drops (beyond its budget once a packer
// ends) has the advice taken back before the garbage collector gets it
// (else small objects later placed in its range would each commit a 2 MiB
// page).
func TestPackBuffersHugePages(t *testing.T) {
	requireTHP(t)
	const want = 16 << 20
	check := func(what string, b []byte, want bool) {
		t.Helper()
		ok, any, err := hugepage.Advised(b[:cap(b)])
		if err != nil {
			t.Fatal(err)
		}
		if !any || ok != want {
			t.Fatalf("%s: advised %v (holds a huge page: %v), want %v", what, ok, any, want)
		}
	}
	f := newPackPool(nil)
	f.startPacker() // budget: 1 + 2 uploads
	a := f.get(want, false)
	check("new pack buffer", a, true)
	f.put(a)
	if b := f.get(want, false); &b[:1][0] != &a[:1][0] {
		t.Fatal("the given-back buffer was not reused")
	}
	check("reused pack buffer", a, true)
	c := f.get(want, false) // a is in use: a new buffer
	check("second new pack buffer", c, true)
	f.put(a)
	f.put(c)
	f.endPacker() // the idle budget keeps one: c, the last given back, is dropped
	check("dropped pack buffer", c, false)
	check("kept pack buffer", a, true)
}

// requireTHP skips where the kernel has no transparent huge pages at all
// (madvise(MADV_HUGEPAGE) fails there and hugepage.Advise is a no-op by
// design); in CI nothing skips.
func requireTHP(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("kernel without transparent huge pages")
	}
}

// TestFailedPackBufferUnadvised: a pack buffer whose write failed leaves
// the pool for the garbage collector (the backend may still read it), so
// its huge-page advice is taken back first, as trim does for the buffers
// it drops; it used to keep it, and the heap's later small objects in its
// range would each commit a 2 MiB page.
func TestFailedPackBufferUnadvised(t *testing.T) {
	requireTHP(t)
	const target = 16 << 20
	tr := newTestRepo(t, InitOptions{PackSize: target})
	r := openGated(t, tr, 0, func(int64) error { return fmt.Errorf("injected: %w", syscall.EIO) })
	p := r.NewPacker(context.Background(), "s")
	// 4 MiB: the buffer holds whole huge pages (one of a 1 MiB blob,
	// packBufStart, may hold none).
	for id, d := range spaceBlobs(r, "s", 1, 4<<20, 1) {
		if err := p.Add(DataBlob, id, 0, len(d), d); err != nil {
			t.Fatal(err)
		}
	}
	buf := p.cur.buf[:cap(p.cur.buf)]
	if ok, _, err := hugepage.Advised(buf); err != nil || !ok {
		t.Fatalf("the open pack's buffer: advised %v, %v; want advised", ok, err)
	}
	if _, _, err := p.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Flush: %v, want the injected EIO", err)
	}
	if ok, _, err := hugepage.Advised(buf); err != nil || ok {
		t.Fatalf("the failed pack's buffer: advised %v, %v; want the advice taken back", ok, err)
	}
}
