package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"memento/chunk"
	"memento/index"
	"memento/repo/backend/local"
	"memento/repo/backend/mem"
)

// packGateBackend is the local backend with its pack writes held up: each
// waits delay (a slow device or object store), and hook, if set, runs
// first and may fail the write (a full disk, a cancelled backup). It
// embeds *local.Backend, so the repository sees its PackWriters.
type packGateBackend struct {
	*local.Backend
	delay time.Duration
	packs atomic.Int64 // pack writes begun
	hook  func(n int64) error
}

func (b *packGateBackend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, DirData+"/") {
		n := b.packs.Add(1)
		if b.hook != nil {
			if err := b.hook(n); err != nil {
				return err
			}
		}
		time.Sleep(b.delay)
	}
	return b.Backend.Write(ctx, name, r, size)
}

// openGated reopens tr's repository through a packGateBackend.
func openGated(t *testing.T, tr *testRepo, delay time.Duration, hook func(int64) error) *Repository {
	t.Helper()
	r, err := Open(context.Background(), &packGateBackend{Backend: tr.be, delay: delay, hook: hook},
		Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// spaceBlobs are one space's blobs for a test: n of size bytes, random
// (so that every pack holds about target/size of them).
func spaceBlobs(r *Repository, space string, n, size int, seed uint64) map[chunk.ID][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := map[chunk.ID][]byte{}
	for len(m) < n {
		d := make([]byte, size)
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		m[r.ChunkKey(space).Sum(d)] = d
	}
	return m
}

// poolState is the pool's counters, read under its lock.
func (f *packPool) state() (out, free, peak, allocs, packers int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out, len(f.free), f.peak, f.allocs, f.packers
}

// checkReadBack indexes packs and reads every blob of want back.
func checkReadBack(t *testing.T, r *Repository, space string, packs []index.PackInfo, want map[chunk.ID][]byte) {
	t.Helper()
	ctx := context.Background()
	if err := r.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	for id, d := range want {
		got, err := r.ReadBlob(ctx, space, DataBlob, id)
		if err != nil {
			t.Fatalf("space %s: blob %x: %v", space, id[:4], err)
		}
		if !bytes.Equal(got, d) {
			t.Fatalf("space %s: blob %x reads %d bytes, not the %d added", space, id[:4], len(got), len(d))
		}
	}
}

// packSpaces adds each space's blobs through a packer of its own, all
// spaces at once (released together), and flushes them: each space's packs
// and Flush error. Add must not fail (an upload error is Flush's).
func packSpaces(t *testing.T, r *Repository, ctx context.Context, blobs []map[chunk.ID][]byte) ([][]index.PackInfo, []error) {
	t.Helper()
	results := make([][]index.PackInfo, len(blobs))
	errs := make([]error, len(blobs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for s := range blobs {
		p := r.NewPacker(ctx, fmt.Sprintf("space-%d", s))
		wg.Go(func() {
			<-start
			for id, d := range blobs[s] {
				if err := p.Add(DataBlob, id, 0, len(d), d); err != nil {
					t.Errorf("space %d: Add: %v (an upload error is Flush's)", s, err)
					break
				}
			}
			results[s], _, errs[s] = p.Flush()
		})
	}
	close(start)
	wg.Wait()
	return results, errs
}

// TestPackBudgetHolds: five spaces' packers at once, their packs written
// through a slow backend, never hold more pack buffers than one filling
// per packer and the local backend's two writes (seven), allocate no more
// than that in all (the written ones are reused), and every blob reads
// back; once the packers end, the pool keeps one idle buffer.
func TestPackBudgetHolds(t *testing.T) {
	const target = 64 << 10
	tr := newTestRepo(t, InitOptions{PackSize: target})
	r := openGated(t, tr, 2*time.Millisecond, nil)
	const spaces = 5
	blobs := make([]map[chunk.ID][]byte, spaces)
	for s := range spaces {
		blobs[s] = spaceBlobs(r, fmt.Sprintf("space-%d", s), 160, 6000, uint64(s))
	}
	results, errs := packSpaces(t, r, context.Background(), blobs)
	packs := 0
	for s := range spaces {
		if errs[s] != nil {
			t.Fatal(errs[s])
		}
		packs += len(results[s])
		checkReadBack(t, r, fmt.Sprintf("space-%d", s), results[s], blobs[s])
	}
	out, free, peak, allocs, packers := r.packs.state()
	const budget = spaces + 2
	t.Logf("%d packs; at most %d buffers at once, %d allocated", packs, peak, allocs)
	if packs < 4*budget {
		t.Fatalf("%d packs: too few to test the budget of %d", packs, budget)
	}
	if peak > budget || allocs > budget {
		t.Fatalf("%d buffers at once, %d allocated: the budget is %d (%d packers + 2 writes)", peak, allocs, budget, spaces)
	}
	if out != 0 || free != packBufsIdle || packers != 0 {
		t.Fatalf("after every Flush: %d buffers out, %d kept, %d packers; want 0, %d, 0", out, free, packers, packBufsIdle)
	}
}

// TestPackersShareWorkersNoDeadlock: many spaces with tiny packs (a pack
// per blob or two), their blobs added by two workers shared by all the
// spaces, as the chunk pipeline's are, through a slow backend. A worker
// waiting for a buffer in one space's Add must not keep the others'
// packs from being written. Bounded by a context's deadline, not a sleep.
func TestPackersShareWorkersNoDeadlock(t *testing.T) {
	const target = 4 << 10
	tr := newTestRepo(t, InitOptions{PackSize: target})
	r := openGated(t, tr, 200*time.Microsecond, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const spaces = 12
	type job struct {
		p  *Packer
		id chunk.ID
		d  []byte
	}
	jobs := make(chan job)
	packers := make([]*Packer, spaces)
	blobs := make([]map[chunk.ID][]byte, spaces)
	var feed []job
	for s := range spaces {
		space := fmt.Sprintf("s%02d", s)
		packers[s] = r.NewPacker(context.Background(), space)
		blobs[s] = spaceBlobs(r, space, 40, 3000, uint64(s))
		for id, d := range blobs[s] {
			feed = append(feed, job{packers[s], id, d})
		}
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(feed), func(i, j int) { feed[i], feed[j] = feed[j], feed[i] })
	done := make(chan error, 1)
	go func() {
		var workers sync.WaitGroup
		var failed atomic.Pointer[error]
		for range 2 {
			workers.Go(func() {
				for j := range jobs {
					if err := j.p.Add(DataBlob, j.id, 0, len(j.d), j.d); err != nil {
						failed.Store(&err)
					}
				}
			})
		}
		for _, j := range feed {
			jobs <- j
		}
		close(jobs)
		workers.Wait()
		if err := failed.Load(); err != nil {
			done <- *err
			return
		}
		for s, p := range packers {
			packs, _, err := p.Flush()
			if err != nil {
				done <- err
				return
			}
			checkReadBack(t, r, fmt.Sprintf("s%02d", s), packs, blobs[s])
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		out, free, peak, _, n := r.packs.state()
		t.Fatalf("deadlock: the packers did not finish (%d buffers out, %d free, peak %d, %d packers)", out, free, peak, n)
	}
	if _, _, peak, _, _ := r.packs.state(); peak > spaces+2 {
		t.Fatalf("%d buffers at once, budget %d", peak, spaces+2)
	}
}

var packWriteErr = regexp.MustCompile(`^write pack [0-9a-f]+ \(\d+ blobs?, \d+ bytes\): .*input/output error$`)

// TestPackUploadErrorSurfaces: pack writes fail from the fifth on (a
// device error); the three packers sharing the uploaders go on adding,
// and each Flush returns its first upload error naming the pack, or,
// for a packer all of whose packs were written, nil with every blob
// readable. No buffer stays out, and the ones whose writes failed are
// not reused.
func TestPackUploadErrorSurfaces(t *testing.T) {
	const target = 64 << 10
	tr := newTestRepo(t, InitOptions{PackSize: target})
	var failedBufs atomic.Int64 // pack writes failed
	r := openGated(t, tr, 0, func(n int64) error {
		if n >= 5 {
			failedBufs.Add(1)
			return fmt.Errorf("injected: %w", syscall.EIO)
		}
		return nil
	})
	const spaces = 3
	blobs := make([]map[chunk.ID][]byte, spaces)
	for s := range spaces {
		blobs[s] = spaceBlobs(r, fmt.Sprintf("space-%d", s), 60, 6000, uint64(s))
	}
	results, errs := packSpaces(t, r, context.Background(), blobs)
	failed := 0
	for s := range spaces {
		if errs[s] == nil {
			checkReadBack(t, r, fmt.Sprintf("space-%d", s), results[s], blobs[s])
			continue
		}
		failed++
		if !errors.Is(errs[s], syscall.EIO) || !packWriteErr.MatchString(errs[s].Error()) {
			t.Fatalf("space %d: Flush: %q, want %s wrapping EIO", s, errs[s], packWriteErr)
		}
	}
	if failed == 0 {
		t.Fatal("no Flush returned the upload error")
	}
	out, free, _, _, _ := r.packs.state()
	if out != 0 || free > packBufsIdle {
		t.Fatalf("%d buffers out, %d kept after every Flush", out, free)
	}
	// A failed write's buffer is given back as nil (write), and the pool
	// then hands out a new one, never that one again.
	f := newPackPool(nil)
	f.startPacker()
	a := f.get(target, false)
	f.put(nil)
	if b := f.get(target, false); &b[:1][0] == &a[:1][0] {
		t.Fatal("a buffer given back as failed was reused")
	}
	if failedBufs.Load() == 0 {
		t.Fatal("no pack write failed")
	}
}

// TestPackCancelSurfaces: the backup's context is cancelled while packs
// are being written (before the third write): every Flush returns an
// error wrapping context.Canceled, the packs written before it are
// returned, and recording them under context.WithoutCancel (as a
// cancelled backup does) makes their blobs readable.
func TestPackCancelSurfaces(t *testing.T) {
	const target = 64 << 10
	tr := newTestRepo(t, InitOptions{PackSize: target})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := openGated(t, tr, 0, func(n int64) error {
		if n == 3 {
			cancel()
		}
		return nil
	})
	const spaces = 3
	blobs := make([]map[chunk.ID][]byte, spaces)
	for s := range spaces {
		blobs[s] = spaceBlobs(r, fmt.Sprintf("space-%d", s), 60, 6000, uint64(s))
	}
	results, errs := packSpaces(t, r, ctx, blobs)
	var written []index.PackInfo
	canceled := 0
	for s := range spaces {
		if errs[s] != nil {
			if !errors.Is(errs[s], context.Canceled) {
				t.Fatalf("space %d: Flush: %v, want context.Canceled", s, errs[s])
			}
			canceled++
		}
		written = append(written, results[s]...)
	}
	if canceled == 0 || len(written) == 0 || len(written) > 3 {
		t.Fatalf("%d Flushes cancelled, %d packs written; want some, and at most the 3 begun before", canceled, len(written))
	}
	if err := r.SaveIndex(context.WithoutCancel(ctx), written); err != nil {
		t.Fatal(err)
	}
	for _, pk := range written {
		for _, b := range pk.Blobs {
			if _, err := r.ReadBlob(context.Background(), pk.Space, DataBlob, b.ID); err != nil {
				t.Fatalf("blob %x of a pack written before the cancel: %v", b.ID[:4], err)
			}
		}
	}
	if out, _, _, _, _ := r.packs.state(); out != 0 {
		t.Fatalf("%d buffers out after every Flush", out)
	}
}

// TestFlushReturnsBuffersFirst: when Flush or Abort returns, every buffer
// of the packer's packs is back in the pool: none is still out, the
// packer's share of the budget is gone, and no uploader touches the pool
// for it afterwards. The uploader gave a written buffer back after it had
// told Flush the pack was done, so Flush could end the packer (and a
// caller read the pool) with the buffer still out (TestPackUploadErrorSurfaces
// reads it so, right after the Flushes). The window is a few instructions
// wide: many short packers on a backend without fsyncs give it a chance
// each; under -race the old order failed within the first 60 rounds in
// each of five runs.
func TestFlushReturnsBuffersFirst(t *testing.T) {
	ctx := context.Background()
	be := mem.New("flush-order")
	if _, err := Init(ctx, be, InitOptions{Password: testPassword, KDF: fastKDF, PackSize: 4 << 10}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, be, Options{Password: testPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	blobs := spaceBlobs(r, "s", 2, 3000, 1) // a pack per blob
	const rounds = 300
	for i := range rounds {
		p := r.NewPacker(ctx, "s")
		for id, d := range blobs {
			if err := p.Add(DataBlob, id, 0, len(d), d); err != nil {
				t.Fatal(err)
			}
		}
		how := "Flush"
		if i%2 == 0 {
			if _, _, err := p.Flush(); err != nil {
				t.Fatal(err)
			}
		} else {
			how = "Abort"
			p.Abort()
		}
		if out, free, _, _, packers := r.packs.state(); out != 0 || packers != 0 || free > packBufsIdle {
			t.Fatalf("round %d: after %s: %d buffers out, %d kept, %d packers; want 0, at most %d, 0", i, how, out, free, packers, packBufsIdle)
		}
	}
}

// TestPackerAddAfterEndPanics: an Add after Flush (or Abort) is a caller's
// bug that panics, as a second Flush does. It used to take a buffer from
// the repository's pool that nothing would ever give back, and queue a
// pack no Flush waits for: each such Add would shrink the budget of a
// long-lived Repository (the agent's) by one buffer for good, until every
// packer waited in get forever.
func TestPackerAddAfterEndPanics(t *testing.T) {
	tr := newTestRepo(t, InitOptions{PackSize: 64 << 10})
	blobs := spaceBlobs(tr.Repository, "s", 2, 3000, 1)
	for _, end := range []string{"Flush", "Abort"} {
		p := tr.NewPacker(context.Background(), "s")
		if end == "Flush" {
			if _, _, err := p.Flush(); err != nil {
				t.Fatal(err)
			}
		} else {
			p.Abort()
		}
		for id, d := range blobs {
			func() {
				defer func() {
					if v := recover(); v != "memento: Packer.Add after Flush or Abort" {
						t.Errorf("Add after %s: recovered %v, want the panic naming it", end, v)
					}
				}()
				_ = p.Add(DataBlob, id, 0, len(d), d)
			}()
		}
		if out, _, _, _, packers := tr.packs.state(); out != 0 || packers != 0 {
			t.Fatalf("after Adds to a packer ended by %s: %d buffers out, %d packers; want 0, 0", end, out, packers)
		}
	}
}

// packOrderBackend is the local backend whose pack writes each wait for a
// token on release, recording the names in the order they began.
type packOrderBackend struct {
	*local.Backend
	release chan struct{}
	mu      sync.Mutex
	names   []string
}

func (b *packOrderBackend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, DirData+"/") {
		b.mu.Lock()
		b.names = append(b.names, name)
		b.mu.Unlock()
		<-b.release
	}
	return b.Backend.Write(ctx, name, r, size)
}

// until polls cond under the pool's lock.
func (f *packPool) until(cond func() bool) {
	for {
		f.mu.Lock()
		ok := cond()
		f.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestUrgentPacksGoFirst: a backup's packer has two packs being written
// (the local backend's two writes, held), two queued, and waits for a
// buffer; the WAL archiver's packer (urgent) waits for one too. When the
// first write ends, the WAL packer takes its buffer and its pack is the
// next written (or the one after, if an uploader took the backup's next
// pack first): the time it waits is the recovery point's lag. Without
// Urgent (the control, and every packer before it existed) the backup's
// packer may take the buffer, and the WAL pack waits behind both queued
// packs.
func TestUrgentPacksGoFirst(t *testing.T) {
	for _, urgent := range []bool{true, false} {
		t.Run(fmt.Sprintf("urgent=%v", urgent), func(t *testing.T) {
			tr := newTestRepo(t, InitOptions{PackSize: 4 << 10})
			be := &packOrderBackend{Backend: tr.be, release: make(chan struct{})}
			r, err := Open(context.Background(), be, Options{Password: testPassword, CacheDir: tr.cache})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			wal := r.NewPacker(ctx, "s")
			if urgent {
				wal.Urgent()
			}
			backup := r.NewPacker(ctx, "s")
			bblobs := spaceBlobs(r, "s", 8, 3000, 1) // a pack per blob
			var wg sync.WaitGroup
			var bpacks, wpacks []index.PackInfo
			pack := func(p *Packer, blobs map[chunk.ID][]byte, packs *[]index.PackInfo) {
				for id, d := range blobs {
					if err := p.Add(DataBlob, id, 0, len(d), d); err != nil {
						t.Error(err)
					}
				}
				var err error
				if *packs, _, err = p.Flush(); err != nil {
					t.Error(err)
				}
			}
			wg.Go(func() { pack(backup, bblobs, &bpacks) })
			// Budget: two packers and two writes, four buffers.
			r.packs.until(func() bool { return len(r.packs.queue) == 2 && r.packs.waiting[0] == 1 })
			wg.Go(func() { pack(wal, spaceBlobs(r, "s", 1, 3000, 2), &wpacks) })
			r.packs.until(func() bool { return r.packs.waiting[0]+r.packs.waiting[1] == 2 })
			// One write ends. Urgent: once the WAL pack is queued (or was
			// the next written) the rest may end in any order. Control:
			// the backup's two queued packs are ahead of it whatever
			// happens next.
			be.release <- struct{}{}
			if urgent {
				// Three writes began (two held, the third taken when the
				// first ended) and the WAL pack is queued, or was the third.
				for {
					be.mu.Lock()
					began := len(be.names)
					be.mu.Unlock()
					f := r.packs
					f.mu.Lock()
					queued := f.urgent == 1 || began == 3 && len(f.queue) == 2
					f.mu.Unlock()
					if began == 3 && queued {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			// One write ends at a time, and the next begins before another
			// ends: the order of begun writes is the order of the queue.
			total := len(bblobs) + 1
			for range len(bblobs) {
				be.mu.Lock()
				before := len(be.names)
				be.mu.Unlock()
				be.release <- struct{}{}
				for {
					be.mu.Lock()
					began := len(be.names)
					be.mu.Unlock()
					if began > before || began == total {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			wg.Wait()
			if len(wpacks) != 1 || len(bpacks) != len(bblobs) {
				t.Fatalf("%d WAL packs and %d backup packs, want 1 and %d", len(wpacks), len(bpacks), len(bblobs))
			}
			pos := slices.Index(be.names, PackName(wpacks[0].ID))
			var order []string
			for _, n := range be.names {
				k := "W"
				for i, b := range bpacks {
					if PackName(b.ID) == n {
						k = fmt.Sprint(i)
					}
				}
				order = append(order, k)
			}
			t.Logf("order %v", order)
			if urgent && pos > 3 || !urgent && pos < 4 {
				t.Fatalf("urgent=%v: the WAL pack was write %d of %d, want %s", urgent, pos, len(be.names), map[bool]string{true: "2 or 3", false: "4 or later"}[urgent])
			}
			t.Logf("the WAL pack was write %d of %d", pos, len(be.names))
		})
	}
}

// TestPackBufferGrowsWithPack: a space that stores little (a backup after
// a day: ~1.6 MiB a space) has its pack buffer allocated at packBufStart
// and grown as its pack fills, not at the full target (16 MiB and the
// header's reserve, zeroed and faulted in whole for every space backed up
// at once); a pack filled by many workers at once through every doubling
// holds every blob it was given, the bytes each sealed before its buffer
// moved included, in one pack within target + reserve.
func TestPackBufferGrowsWithPack(t *testing.T) {
	const target = 16 << 20
	tr := newTestRepo(t, InitOptions{PackSize: target})
	r := openGated(t, tr, 0, nil)
	ctx := context.Background()

	small := spaceBlobs(r, "space-0", 60, 20000, 1) // 1.2 MB (packSpaces names it space-0)
	res, errs := packSpaces(t, r, ctx, []map[chunk.ID][]byte{small})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	r.packs.mu.Lock()
	allocs, bytes := r.packs.allocs, r.packs.allocBytes
	r.packs.mu.Unlock()
	// 1 MiB, then 4 MiB for the second MB.
	if allocs != 2 || bytes != packBufStart+packBufGrowth*packBufStart {
		t.Fatalf("1.2 MB of blobs: %d pack buffers allocated, %d bytes; want 2 (1 MiB, grown to 4 MiB)", allocs, bytes)
	}
	checkReadBack(t, r, "space-0", res[0], small)

	// 12 MB from 8 workers at once: 1 -> 4 -> 16 MiB + reserve, each
	// move while others seal into the pack.
	big := spaceBlobs(r, "big", 600, 20000, 2)
	p := r.NewPacker(ctx, "big")
	ids := slices.Collect(maps.Keys(big))
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(ids); i += 8 {
				if err := p.Add(DataBlob, ids[i], 0, len(big[ids[i]]), big[ids[i]]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != 1 || len(packs[0].Blobs) != len(big) || packs[0].Size > int64(target+packHeaderReserve(target)) {
		t.Fatalf("%d packs (first: %d blobs, %d bytes); want one of %d blobs within %d bytes",
			len(packs), len(packs[0].Blobs), packs[0].Size, len(big), target+packHeaderReserve(target))
	}
	checkReadBack(t, r, "big", packs, big)
}

// TestPackBufferGrowsToFullOnce: a packer that fills several packs grows its
// first buffer 1 MiB -> 4 MiB -> the full size with the header's reserve in
// one step (it grew to 16 MiB, then again to the full size: a 16 MiB copy
// and 16 MiB of garbage per buffer), and once a pack grew full, the next
// packs' buffers are full at once, not grown from 1 MiB again. Every
// buffer allocated after the first two is of the full size.
func TestPackBufferGrowsToFullOnce(t *testing.T) {
	const target = 16 << 20
	tr := newTestRepo(t, InitOptions{PackSize: target})
	r := openGated(t, tr, 0, nil)
	ctx := context.Background()
	blobs := spaceBlobs(r, "s", 2000, 20000, 4) // 40 MB: three packs
	p := r.NewPacker(ctx, "s")
	for id := range blobs {
		if err := p.Add(DataBlob, id, 0, len(blobs[id]), blobs[id]); err != nil {
			t.Fatal(err)
		}
	}
	full := p.full(0)
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != 3 {
		t.Fatalf("%d packs; want 3", len(packs))
	}
	r.packs.mu.Lock()
	allocs, bytes := r.packs.allocs, r.packs.allocBytes
	r.packs.mu.Unlock()
	if first := int64(packBufStart + packBufGrowth*packBufStart); allocs < 3 || bytes-first != int64(allocs-2)*int64(full) {
		t.Fatalf("%d pack buffers allocated, %d bytes; want 1 MiB, 4 MiB and then only full ones of %d bytes", allocs, bytes, full)
	}
	checkReadBack(t, r, "s", packs, blobs)
}

// TestPackAbortGivesBackGrownBuffer: Abort gives the pool the buffer the
// open pack grew into (not the one it started with, left to the garbage
// collector), and the next packer reuses it without allocating.
func TestPackAbortGivesBackGrownBuffer(t *testing.T) {
	const target = 16 << 20
	tr := newTestRepo(t, InitOptions{PackSize: target})
	r := openGated(t, tr, 0, nil)
	ctx := context.Background()
	p := r.NewPacker(ctx, "s")
	for id, d := range spaceBlobs(r, "s", 100, 20000, 3) { // 2 MB: 1 MiB grown to 4 MiB
		if err := p.Add(DataBlob, id, 0, len(d), d); err != nil {
			t.Fatal(err)
		}
	}
	grown := p.cur.buf[:1]
	if packs := p.Abort(); len(packs) != 0 {
		t.Fatalf("Abort wrote %d packs", len(packs))
	}
	r.packs.mu.Lock()
	out, free, allocs := r.packs.out, slices.Clone(r.packs.free), r.packs.allocs
	r.packs.mu.Unlock()
	if out != 0 || len(free) != 1 || cap(free[0]) != packBufGrowth*packBufStart || &free[0][:1][0] != &grown[0] {
		t.Fatalf("after Abort: %d buffers out, %d free (first of capacity %d); want none out and the grown one of %d free",
			out, len(free), cap(free[0]), packBufGrowth*packBufStart)
	}
	q := r.NewPacker(ctx, "s")
	for id, d := range spaceBlobs(r, "s", 1, 20000, 4) {
		if err := q.Add(DataBlob, id, 0, len(d), d); err != nil {
			t.Fatal(err)
		}
	}
	q.Abort()
	if _, _, _, a, _ := r.packs.state(); a != allocs {
		t.Fatalf("the next packer allocated %d buffers, want it to reuse the given-back one", a-allocs)
	}
}

// TestPackBuffersRaiseMemoryLimit: while a packer runs, the soft memory
// limit is raised by the bytes of the pack buffers the pool holds, at most
// packLimitRaise, and set back exactly once the packer ends; a failed
// write's buffer leaves the pool's count (packPool.lose).
func TestPackBuffersRaiseMemoryLimit(t *testing.T) {
	const limit = 200 << 20
	prev := debug.SetMemoryLimit(limit)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const target = 16 << 20
	tr := newTestRepo(t, InitOptions{PackSize: target})
	release := make(chan struct{})
	fail := atomic.Bool{}
	r := openGated(t, tr, 0, func(int64) error {
		<-release
		if fail.Load() {
			return errors.New("disk full")
		}
		return nil
	})
	ctx := context.Background()
	// 70 MB of random blobs: more than the budget's three full packs.
	blobs := map[chunk.ID][]byte{}
	rng := rand.NewChaCha8([32]byte{26})
	for len(blobs) < 3500 {
		d := make([]byte, 20000)
		_, _ = rng.Read(d)
		blobs[r.ChunkKey("s").Sum(d)] = d
	}
	ids := slices.SortedFunc(maps.Keys(blobs), func(a, b chunk.ID) int { return bytes.Compare(a[:], b[:]) })
	p := r.NewPacker(ctx, "s")
	if err := p.Add(DataBlob, ids[0], 0, len(blobs[ids[0]]), blobs[ids[0]]); err != nil {
		t.Fatal(err)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(limit+cap(p.cur.buf)); got != want || cap(p.cur.buf) != packBufStart {
		t.Fatalf("limit %d with one buffer of %d bytes out; want %d", got, cap(p.cur.buf), want)
	}
	// The uploads wait: the packer fills its budget's three buffers, two
	// packs written and one filling, and then waits for a buffer.
	added := make(chan error, 1)
	go func() {
		for _, id := range ids[1:] {
			if err := p.Add(DataBlob, id, 0, len(blobs[id]), blobs[id]); err != nil {
				added <- err
				return
			}
		}
		added <- nil
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.packs.mu.Lock()
		out, waiting, held := r.packs.out, r.packs.waiting[0], r.packs.held
		r.packs.mu.Unlock()
		if out == 3 && waiting == 1 {
			if full := int64(p.full(0)); held != 3*full {
				t.Fatalf("pool holds %d bytes with three buffers out; want three full ones, %d", held, 3*full)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the packer did not wait with its budget out: %d buffers out, %d waiting", out, waiting)
		}
		time.Sleep(time.Millisecond)
	}
	if got, want := debug.SetMemoryLimit(-1), int64(limit+packLimitRaise); got != want {
		t.Fatalf("limit %d with three full buffers out; want %d (raised by packLimitRaise)", got, want)
	}
	fail.Store(true)
	close(release)
	if err := <-added; err != nil && !strings.Contains(err.Error(), "disk full") {
		t.Fatal(err)
	}
	if _, _, err := p.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush: %v; want the failed write's error", err)
	}
	r.packs.mu.Lock()
	out, held, raised := r.packs.out, r.packs.held, r.packs.raised
	var free int64
	for _, b := range r.packs.free {
		free += int64(cap(b))
	}
	r.packs.mu.Unlock()
	if got := debug.SetMemoryLimit(-1); got != limit || raised != 0 || out != 0 || held != free {
		t.Fatalf("after Flush: limit %d (raised by %d), %d buffers out, %d bytes held, %d free; want %d, none out, held = free",
			got, raised, out, held, free, limit)
	}
}
