package chunk

import (
	"bytes"
	"runtime"
	"testing"

	"memento/repo/slabmem"
)

// TestBufListReusesBigBuffersAcrossGC pins what the pipeline's free list is
// for: a big buffer given back is handed out again after a garbage
// collection (a sync.Pool would have dropped it, and the runtime zeroed a
// fresh 8 MiB), and what it keeps stays within its bound.
func TestBufListReusesBigBuffersAcrossGC(t *testing.T) {
	l := newBufList(2*MaxChunkSize, nil)
	a, b, c := l.get(MaxChunkSize), l.get(MaxChunkSize-1), l.get(MaxChunkSize)
	if len(*a) != MaxChunkSize || len(*b) != MaxChunkSize-1 || cap(*b) != MaxChunkSize {
		t.Fatalf("get: len %d, len %d cap %d", len(*a), len(*b), cap(*b))
	}
	pa, pb := &(*a)[:1][0], &(*b)[:1][0]
	l.put(a)
	l.put(b)
	l.put(c) // beyond the bound: to the sync.Pool
	if l.bytes != 2*MaxChunkSize {
		t.Fatalf("list holds %d bytes, bound %d", l.bytes, 2*MaxChunkSize)
	}
	runtime.GC()
	runtime.GC()
	x, y := l.get(5<<20), l.get(MaxChunkSize)
	px, py := &(*x)[:1][0], &(*y)[:1][0]
	if (px != pa && px != pb) || (py != pa && py != pb) || px == py {
		t.Fatal("buffers given back were not reused after a GC")
	}
	if len(*x) != 5<<20 || l.bytes != 0 {
		t.Fatalf("len %d, list holds %d bytes after taking both", len(*x), l.bytes)
	}
	// Small buffers and foreign ones (not a power of two) are not kept.
	l.put(getBuf(64 << 10))
	odd := make([]byte, 3<<20)
	l.put(&odd)
	if l.bytes != 0 {
		t.Fatalf("list keeps %d bytes of small or foreign buffers", l.bytes)
	}
	l.put(x)
	l.release()
	if l.bytes != 0 || len(l.free[sizeClass(MaxChunkSize)]) != 0 {
		t.Fatal("release kept buffers")
	}
	var nilList *bufList // the process-wide pools alone
	nilList.put(nilList.get(MaxChunkSize))
}

// TestPipelineReleasesBuffersWhenIdle: once its last Split returns, a
// pipeline keeps no big buffers of its own (a long-lived one, the agent's,
// would otherwise hold them between backups).
func TestPipelineReleasesBuffersWhenIdle(t *testing.T) {
	p := NewPipeline(2, LevelFastest)
	defer p.Close()
	data := genFloats(3<<20, 7)
	ids, _, n, err := p.Split(t.Context(), bytes.NewReader(data), testPol, ParamsCold, Key{}, nil, func(*Chunk) error { return nil })
	if err != nil || n != int64(len(data)) || len(ids) == 0 {
		t.Fatalf("Split: %d ids, %d bytes, %v", len(ids), n, err)
	}
	p.bufs.mu.Lock()
	defer p.bufs.mu.Unlock()
	if p.bufs.bytes != 0 {
		t.Fatalf("idle pipeline keeps %d bytes of buffers", p.bufs.bytes)
	}
	if m := p.bufs.mem; m == nil || m.Bytes() != 0 || m.Out() != 0 {
		t.Fatalf("idle pipeline keeps slabs mapped (mem %v)", m)
	}
}

// TestBufListTakesBigBuffersFromSlabs: the pipeline's big buffers come from
// its slabmem.Mem (outside the Go heap, never zeroed again by the runtime),
// go back to the list or the Mem, never to a sync.Pool, and release unmaps
// the slabs only once none of them is out.
func TestBufListTakesBigBuffersFromSlabs(t *testing.T) {
	mem := slabmem.NewLimit(2 * slabmem.MaxBlock)
	l := newBufList(MaxChunkSize, mem)
	a, b := l.get(MaxChunkSize), l.get(3<<20)
	if len(*a) != MaxChunkSize || cap(*a) != MaxChunkSize || len(*b) != 3<<20 || cap(*b) != 4<<20 {
		t.Fatalf("get: len %d cap %d, len %d cap %d", len(*a), cap(*a), len(*b), cap(*b))
	}
	if mem.Out() != 2 || mem.Bytes() != slabmem.MaxBlock {
		t.Fatalf("%d buffers out of %d bytes of slabs, want 2 of %d", mem.Out(), mem.Bytes(), slabmem.MaxBlock)
	}
	// Small buffers are the sync.Pools'.
	small := l.get(64 << 10)
	if mem.Out() != 2 {
		t.Fatal("a small buffer came from the slabs")
	}
	l.put(small)
	// Past the list's bound a slab buffer goes back to the Mem.
	l.put(a)
	l.put(b)
	if l.bytes != MaxChunkSize || mem.Out() != 1 {
		t.Fatalf("list holds %d bytes, %d slab buffers out of it", l.bytes, mem.Out())
	}
	// Beyond the Mem's limit: heap buffers.
	x, y, z := l.get(MaxChunkSize), l.get(MaxChunkSize), l.get(MaxChunkSize)
	w := l.get(MaxChunkSize) // two slabs of two 8 MiB blocks each, one more
	if mem.Out() != 4 || mem.Bytes() != 2*slabmem.MaxBlock {
		t.Fatalf("%d buffers out of %d bytes of slabs", mem.Out(), mem.Bytes())
	}
	heap := l.get(MaxChunkSize)
	if mem.Out() != 4 || len(*heap) != MaxChunkSize {
		t.Fatalf("past the limit: %d slab buffers out, len %d", mem.Out(), len(*heap))
	}
	l.put(heap)
	l.put(x)
	l.put(y)
	l.put(z)
	// One still out (taken outside a Split): the slabs stay mapped.
	l.release()
	if l.bytes != 0 || mem.Out() != 1 || mem.Bytes() != 2*slabmem.MaxBlock {
		t.Fatalf("release with one out: list %d bytes, %d out, %d mapped", l.bytes, mem.Out(), mem.Bytes())
	}
	(*w)[0] = 1 // still mapped
	l.put(w)
	l.release()
	if mem.Out() != 0 || mem.Bytes() != 0 {
		t.Fatalf("release with none out: %d out, %d bytes mapped", mem.Out(), mem.Bytes())
	}
	// Used again after a release: mapped again.
	l.put(l.get(MaxChunkSize))
	if mem.Bytes() != slabmem.MaxBlock {
		t.Fatalf("after reuse %d bytes mapped", mem.Bytes())
	}
	l.release()
}
