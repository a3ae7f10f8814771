package chunk

import (
	"bytes"
	"runtime"
	"testing"
)

// TestBufListReusesBigBuffersAcrossGC pins what the pipeline's free list is
// for: a big buffer given back is handed out again after a garbage
// collection (a sync.Pool would have dropped it, and the runtime zeroed a
// fresh 8 MiB), and what it keeps stays within its bound.
func TestBufListReusesBigBuffersAcrossGC(t *testing.T) {
	l := newBufList(2 * MaxChunkSize)
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
}
