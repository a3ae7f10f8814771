package repo

import (
	"os"
	"testing"

	"memento/repo/hugepage"
)

// TestPackBuffersHugePages: a new mapped pack buffer is advised for
// transparent huge pages before it is filled, a given-back one is reused
// for the next pack with its advice, and a heap buffer (past the mapped
// ones) has the advice taken back when it is given back, before the
// garbage collector gets it (else small objects later placed in its range
// would each commit a 2 MiB page).
func TestPackBuffersHugePages(t *testing.T) {
	requireTHP(t)
	const target = 16 << 20
	check := func(what string, b []byte, want bool) {
		t.Helper()
		b = b[:cap(b)]
		b[0] = 1 // faulted in: a huge page if advised
		ok, any, err := hugepage.Advised(b)
		if err != nil {
			t.Fatal(err)
		}
		if !any || ok != want {
			t.Fatalf("%s: advised %v (holds a huge page: %v), want %v", what, ok, any, want)
		}
	}
	var f packBufs
	f.start()
	a := f.newOpenPack(target, 0)
	if a.reg == nil {
		t.Fatal("the first pack buffer is not mapped")
	}
	check("new pack buffer", a.buf, true)
	ab := a.buf
	f.done(a, false)
	b := f.newOpenPack(target, 0)
	if &b.buf[:1][0] != &ab[:1][0] {
		t.Fatal("the given-back buffer was not reused")
	}
	check("reused pack buffer", b.buf, true)
	packs := []*openPack{b}
	for range packBufsMapped - 1 {
		packs = append(packs, f.newOpenPack(target, 0))
	}
	c := f.newOpenPack(target, 0) // every mapped one is in use: the heap
	if c.reg != nil {
		t.Fatalf("pack buffer %d is mapped, want %d mapped at most", packBufsMapped+1, packBufsMapped)
	}
	check("heap pack buffer", c.buf, true)
	cb := c.buf
	f.done(c, false)
	check("heap pack buffer given back", cb, false)
	for _, pp := range packs {
		f.done(pp, false)
	}
	f.stop()
	if f.mapped != 0 || len(f.free) != 0 {
		t.Fatalf("after the last packer: %d mapped, %d idle, want none", f.mapped, len(f.free))
	}
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
