package restore

import (
	"context"
	"slices"
	"sync"

	"memento/repo/slabmem"
)

// FileGate bounds the files written at once by several restores running
// together (`restore --all` restores every space at once) and, when a file
// ends, lets the largest file waiting go next, whichever restore it is of.
// Before issue 18's session 9 each space was restored on its own two
// workers, two spaces at a time: a data dir's third space started when one
// of the first two was done and ran alone at the end, its largest file (the
// warm tier, last in its tree) on one core. With every space running and
// one gate, the spaces end together. The memory a restore holds is per file
// (its read-ahead, restoreAhead, and its write buffers), so the gate bounds
// that too. (Ordering each space's files largest first as well was measured
// and not taken: three warm tiers at once took a quarter more page faults
// and more CPU; docs/benchmarks.md.)
type FileGate struct {
	mu      sync.Mutex
	free    int
	seq     uint64
	waiting []*gateWaiter

	mem     *slabmem.Mem // the buffers of the restores using the gate (memFor)
	memRefs int
}

type gateWaiter struct {
	size uint64
	seq  uint64 // arrival order: the earlier of two equal sizes goes first
	ch   chan struct{}
}

// NewFileGate returns a gate letting n files (at least 1) be written at once.
func NewFileGate(n int) *FileGate { return &FileGate{free: max(n, 1)} }

// acquire waits for a slot for a file of size bytes and returns its release.
// A nil gate does not bound anything.
func (g *FileGate) acquire(ctx context.Context, size uint64) (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	g.mu.Lock()
	if g.free > 0 && len(g.waiting) == 0 {
		g.free--
		g.mu.Unlock()
		return g.release, nil
	}
	g.seq++
	w := &gateWaiter{size: size, seq: g.seq, ch: make(chan struct{})}
	g.waiting = append(g.waiting, w)
	g.mu.Unlock()
	select {
	case <-w.ch:
		return g.release, nil
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		if i := slices.Index(g.waiting, w); i >= 0 {
			g.waiting = slices.Delete(g.waiting, i, i+1)
			return nil, ctx.Err()
		}
		// The slot was handed over meanwhile: pass it on.
		g.releaseLocked()
		return nil, ctx.Err()
	}
}

func (g *FileGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.releaseLocked()
}

// releaseLocked hands the slot to the largest file waiting, or frees it.
func (g *FileGate) releaseLocked() {
	if len(g.waiting) == 0 {
		g.free++
		return
	}
	best := 0
	for i, w := range g.waiting {
		if b := g.waiting[best]; w.size > b.size || (w.size == b.size && w.seq < b.seq) {
			best = i
		}
	}
	w := g.waiting[best]
	g.waiting = slices.Delete(g.waiting, best, best+1)
	close(w.ch)
}

// memFor returns the buffers of one restore (slabmem), shared by every
// restore running through g at the time, and its release, to be called
// once the restore has ended: the last release unmaps them. A nil gate
// gives a restore buffers of its own.
func (g *FileGate) memFor() (*slabmem.Mem, func()) {
	if g == nil {
		m := slabmem.New()
		return m, m.Release
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mem == nil {
		g.mem = slabmem.New()
	}
	g.memRefs++
	m := g.mem
	return m, sync.OnceFunc(func() { // a second call must not unmap under another restore
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.memRefs--; g.memRefs == 0 {
			m.Release()
			g.mem = nil
		}
	})
}
