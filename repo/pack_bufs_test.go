package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"memento/index"
)

// packFaultBackend fails every pack write from the failFrom-th on (counting
// from 1; 0 fails none), and the others go to the repository's directory.
type packFaultBackend struct {
	Backend
	failFrom atomic.Int64
	packs    atomic.Int64
}

func (b *packFaultBackend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, DirData+"/") {
		if n, from := b.packs.Add(1), b.failFrom.Load(); from > 0 && n >= from {
			return fmt.Errorf("write %s: %w", name, syscall.EIO)
		}
	}
	return b.Backend.Write(ctx, name, r, size)
}

// openPackFaulty opens tr's repository through a packFaultBackend.
func openPackFaulty(t *testing.T, tr *testRepo, failFrom int64) (*Repository, *packFaultBackend) {
	t.Helper()
	fb := &packFaultBackend{Backend: tr.be}
	fb.failFrom.Store(failFrom)
	r, err := Open(context.Background(), fb, Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatal(err)
	}
	return r, fb
}

// packBufCounts returns how many pack buffers f has mapped, how many of
// them are idle and how many retired.
func packBufCounts(f *packBufs) (mapped, free, retired int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mapped, len(f.free), len(f.retired) + len(f.old)
}

// addBlobs adds n blobs of 40 KiB (distinct, incompressible enough) to p
// from four goroutines and returns the first error and the blobs added.
func addBlobs(r *Repository, p *Packer, space string, n int) (map[[32]byte][]byte, error) {
	var mu sync.Mutex
	data := map[[32]byte][]byte{}
	var first error
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				d := bytes.Repeat(fmt.Appendf(nil, "%s blob %d of %d;", space, i, n), 3000)[:40<<10]
				id := r.ChunkKey(space).Sum(d)
				err := p.Add(DataBlob, id, 0, len(d), d)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil {
					data[id] = d
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return data, first
}

// TestPackBuffersGivenBackOnEveryPath: the mapped pack buffers of three
// spaces' packers written at once are reused and unmapped when the last
// packer ends, and every pack reads back; a backend that fails pack writes
// makes the packers drain what they still get, and every buffer comes back
// (the failed writes' ones retired until the repository closes, the
// others unmapped); an aborted packer gives back its partial pack. Run
// with -race: a buffer given back twice, or reused while a worker seals
// into it, shows as a race or as a pack that does not read back.
func TestPackBuffersGivenBackOnEveryPath(t *testing.T) {
	const target = 1 << 20
	ctx := context.Background()

	t.Run("written", func(t *testing.T) {
		tr := newTestRepo(t, InitOptions{PackSize: target})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var packs []index.PackInfo
		all := map[string]map[[32]byte][]byte{}
		for _, sp := range []string{"a", "b", "c"} {
			p := tr.NewPacker(ctx, sp)
			wg.Go(func() {
				data, err := addBlobs(tr.Repository, p, sp, 200) // ~8 packs
				if err != nil {
					t.Error(err)
				}
				ps, _, err := p.Flush()
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				packs = append(packs, ps...)
				all[sp] = data
				mu.Unlock()
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if m, f, r := packBufCounts(&tr.packBufs); m != 0 || f != 0 || r != 0 {
			t.Fatalf("after the packers: %d mapped, %d idle, %d retired, want none", m, f, r)
		}
		if len(packs) < 3*6 {
			t.Fatalf("%d packs, want at least 18 (each buffer reused)", len(packs))
		}
		if err := tr.SaveIndex(ctx, packs); err != nil {
			t.Fatal(err)
		}
		for sp, data := range all {
			for id, want := range data {
				got, err := tr.ReadBlob(ctx, sp, DataBlob, id)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("space %s blob %x reads %d bytes unlike the %d written", sp, id[:4], len(got), len(want))
				}
			}
		}
	})

	t.Run("failing backend", func(t *testing.T) {
		tr := newTestRepo(t, InitOptions{PackSize: target})
		r, fb := openPackFaulty(t, tr, 3)
		p := r.NewPacker(ctx, "a")
		_, addErr := addBlobs(r, p, "a", 400) // ~16 packs: the 3rd write fails
		_, _, err := p.Flush()
		if err == nil || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "write pack ") {
			t.Fatalf("flush after failed pack writes: %v, want the first write pack error (EIO)", err)
		}
		if addErr != nil && addErr.Error() != err.Error() {
			t.Fatalf("add: %v, flush: %v, want the same first error", addErr, err)
		}
		m, f, ret := packBufCounts(&r.packBufs)
		if f != 0 || ret < 1 || m != ret {
			t.Fatalf("after a failed flush: %d mapped, %d idle, %d retired; want only retired ones mapped, at least one", m, f, ret)
		}
		if n := fb.packs.Load(); n < 3 {
			t.Fatalf("%d pack writes, want the failing third", n)
		}
		// The next packers (the backend mended) reuse none of the failed
		// writes' buffers, and unmap them when they end.
		fb.failFrom.Store(0)
		p = r.NewPacker(ctx, "a")
		if _, err := addBlobs(r, p, "a", 60); err != nil {
			t.Fatal(err)
		}
		if m, _, ret2 := packBufCounts(&r.packBufs); ret2 != ret || m > packBufsMapped {
			t.Fatalf("while the next packer runs: %d mapped, %d retired; want the %d retired kept", m, ret2, ret)
		}
		if _, _, err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		if m, f, ret := packBufCounts(&r.packBufs); m != 0 || f != 0 || ret != 0 {
			t.Fatalf("after the next packer: %d mapped, %d idle, %d retired, want none", m, f, ret)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("failing backend, closed", func(t *testing.T) {
		tr := newTestRepo(t, InitOptions{PackSize: target})
		r, _ := openPackFaulty(t, tr, 1)
		p := r.NewPacker(ctx, "a")
		_, _ = addBlobs(r, p, "a", 100)
		if _, _, err := p.Flush(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("flush: %v, want EIO", err)
		}
		if m, _, ret := packBufCounts(&r.packBufs); ret < 1 || m != ret {
			t.Fatalf("after a failed flush: %d mapped, %d retired; want only retired ones", m, ret)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if m, f, ret := packBufCounts(&r.packBufs); m != 0 || f != 0 || ret != 0 {
			t.Fatalf("after close: %d mapped, %d idle, %d retired, want none", m, f, ret)
		}
	})

	t.Run("abort", func(t *testing.T) {
		tr := newTestRepo(t, InitOptions{PackSize: target})
		p := tr.NewPacker(ctx, "a")
		if _, err := addBlobs(tr.Repository, p, "a", 60); err != nil { // 2 packs and a partial one
			t.Fatal(err)
		}
		written := p.Abort()
		if m, f, r := packBufCounts(&tr.packBufs); m != 0 || f != 0 || r != 0 {
			t.Fatalf("after abort: %d mapped, %d idle, %d retired, want none", m, f, r)
		}
		if len(written) < 1 || len(tr.packFiles(t)) != len(written) {
			t.Fatalf("abort returned %d packs, %d on disk; want the same, at least one", len(written), len(tr.packFiles(t)))
		}
	})
}
