package verify

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/trace"
	"sort"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/slabmem"
)

// L2 reads each pack a snapshot references once, front to back in runs of
// the chunks it needs (repo.StreamBlobs: a few MiB per ranged read, short
// gaps read through), several runs in flight so that the disk streams while
// every core decrypts and checks the chunks of the runs already read. Files
// are hashed as their chunks are opened, all files at once, on the
// goroutine that opened the chunk (session 10: the plaintext is hashed
// while it is in the cache and its buffer is reused at once, rather than
// waiting with its run for one consumer goroutine to hash every file): a
// file whose next chunk has not been opened yet simply waits, and a chunk
// opened before its file needs it is held (up to BufferBytes; beyond that
// it is dropped and read again when needed, those needed last first).
// Packs are read in the order that keeps all files advancing together
// (orderJobs), as the backup that wrote them read them, so in practice
// little is ever held.

// fileTap receives a file's bytes in order as L2 verifies them; L3 uses it
// to stream WAL segments through walreplay without reading them twice.
type fileTap interface {
	io.Writer
	// finish is called once: with nil when the file was complete and its
	// BLAKE3 matched, else with the reason it was not.
	finish(err error)
}

type tapFunc func(f WalkFile) fileTap

type packBlob struct {
	id  chunk.ID
	loc index.Location
}

type packJob struct {
	pack  [32]byte
	blobs []packBlob // sorted by offset
}

// l2RunBytes bounds one read of L2, and l2Ahead what the runs read ahead of
// the consumer hold, their stored bytes and their blobs' plaintexts
// (StreamOptions.AheadHeld): enough runs in flight that both cores have
// chunks to open while the disk reads the next ones. Bounding the stored
// bytes alone (48 MiB of 8 MiB runs until session 9) let the plaintexts of
// the WAL's compressed runs, two to four times their stored size, take the
// heap to the 200 MiB limit: the GC then ran every 50-100 ms, dropped the
// pooled plaintext buffers between a space's WAL segments and the next
// space's, and some 550 MB of fresh buffers were allocated, zeroed and
// faulted in per GiB verified (0.3-0.5 CPU s). Held bytes bound the heap
// itself; runs of 4 MiB keep several of them in flight under that bound
// (with 8 MiB runs, one WAL run's plaintext filled it and one core waited).
//
// l2Mem bounds the huge-page slabs (slabmem) L2's streams take those
// runs and plaintexts from: l2Ahead and what the buddy allocator loses to
// rounding up to powers of two; past it a buffer is the heap's, as before
// session 13.
const (
	l2RunBytes = 4<<20 - repo.ReadSlack // a run and its read slack fit a 4 MiB pooled buffer
	l2Ahead    = 64 << 20
	l2Mem      = 96 << 20
)

// data is L2 (and the reading half of L3 when tap is set).
func (v *Verifier) data(ctx context.Context, w *SnapWalk, vd *Verdict, tap tapFunc) error {
	start := time.Now()
	sub := v.opts.Subset
	var jobs []*packJob
	byPack := map[[32]byte]*packJob{}
	planned := map[chunk.ID]bool{}
	var hashable []WalkFile
	skipped := 0
	for _, f := range w.Files {
		covered := !w.Broken[f.Rel]
		for _, id := range f.Node.Content {
			l, ok := w.locs[id]
			if !ok || w.bad[l.Pack] != "" {
				covered = false
				continue
			}
			if !sub.selects(l.Pack) {
				covered = false
				continue
			}
			if planned[id] {
				continue
			}
			planned[id] = true
			j := byPack[l.Pack]
			if j == nil {
				j = &packJob{pack: l.Pack}
				byPack[l.Pack] = j
				jobs = append(jobs, j)
			}
			j.blobs = append(j.blobs, packBlob{id, l})
		}
		if covered {
			hashable = append(hashable, f)
		} else if !w.Broken[f.Rel] {
			skipped++
		}
	}
	jobs = orderJobs(w.Files, w.locs, byPack, jobs)
	// Every job's blobs in job order, by offset within each pack: the
	// stream cuts them into the same runs, one pack's at a time.
	var ids []chunk.ID
	var locs []index.Location
	for _, j := range jobs {
		sort.Slice(j.blobs, func(a, b int) bool { return j.blobs[a].loc.Offset < j.blobs[b].loc.Offset })
		for _, b := range j.blobs {
			ids = append(ids, b.id)
			locs = append(locs, b.loc)
		}
	}
	// Every run is read and opened on a goroutine of its own, started in
	// order as long as the runs in flight hold at most l2Ahead bytes; the
	// consumer takes them in order. Opening is CPU work, so at most Workers
	// runs open blobs at once. No fallback to other copies: L2 reports the
	// damage.
	opts := repo.StreamOptions{RunBytes: l2RunBytes, Ramp: true, Ahead: l2Ahead, AheadHeld: true, Workers: v.opts.Workers, AroundCache: true,
		Buffer: repo.BufferPooled, OnRead: func(n int64) { v.opts.Progress.Bytes.Add(n) }, Locs: locs}
	// The chunks of the files hashed are opened without their keyed ID
	// check (endToEnd; L3's taps keep it); if any of them was not proven
	// by a file's BLAKE3 and then fails that check (confirm), the pass is
	// run again with every ID checked, so that the findings are those of
	// a pass that checked them all. The pass is planned (newDataCheck)
	// before the wait below: in a relay, while the previous snapshot's
	// stream keeps both cores busy, rather than at the hand-over with one.
	if w.relay != nil {
		// In a relay the next snapshot starts streaming as soon as this
		// one has started its last runs, under the same bound and in the
		// same memory.
		opts.Share, opts.Started, opts.Mem = w.relay.share, w.relay.streamed, w.relay.mem
	} else {
		// The runs and the plaintexts in huge-page slabs of this pass's
		// own (slabmem), unmapped when it ends: every stream of it has
		// returned, and no buffer of theirs is used after.
		opts.Mem = slabmem.NewLimit(l2Mem)
		defer opts.Mem.Release()
	}
	mark, dropped := len(vd.Findings), vd.dropped
	c, sopts := v.newDataCheck(ctx, w, vd, tap, ids, hashable, opts, tap == nil)
	// The chunks still held when the pass ends (files it never completed:
	// damage) go back to the memory they came from, which a relay's next
	// snapshots share (before the pass's own Mem is released, deferred above).
	defer func() { c.drop() }()
	// In a relay of snapshots, wait for the previous one's stream to have
	// started its last runs; that wait is not this snapshot's L2 time.
	waitFrom := time.Now()
	if err := w.relay.startStream(ctx); err != nil {
		return err
	}
	defer w.relay.streamed()
	defer trace.StartRegion(ctx, "verify L2 stream").End()
	start = start.Add(time.Since(waitFrom))
	if err := c.stream(ctx, ids, sopts); err != nil {
		return err
	}
	var first int64 // the bytes the first pass read, when it is run again
	if c.endToEnd {
		ok, err := c.confirm(ctx)
		if err != nil {
			return err
		}
		if !ok {
			first = c.read + c.checked
			vd.Findings, vd.dropped = vd.Findings[:mark], dropped
			c.drop()
			c, sopts = v.newDataCheck(ctx, w, vd, tap, ids, hashable, opts, false)
			if err := c.stream(ctx, ids, sopts); err != nil {
				return err
			}
		}
	}
	c.report()
	secs := time.Since(start).Seconds()
	c.read += first
	vd.Figures["l2_seconds"] = secs
	vd.Figures["packs_read"] = float64(c.packs)
	vd.Figures["bytes_read"] = float64(c.read)
	vd.Figures["chunks_verified"] = float64(c.chunks)
	vd.Figures["data_bytes"] = float64(c.raw)
	vd.Figures["files_hashed"] = float64(c.hashed)
	vd.Figures["reread_bytes"] = float64(c.reread)
	if secs > 0 {
		vd.Figures["l2_mb_per_s"] = float64(c.read) / secs / 1e6
	}
	if skipped > 0 {
		vd.Figures["files_skipped"] = float64(skipped)
	}
	vd.note("L2: read %d packs (%s) in %.2fs (%s/s), verified %d chunks (%s of data) and %d files",
		c.packs, humanize.IBytes(uint64(c.read)), secs, humanize.IBytes(uint64(float64(c.read)/max(secs, 1e-9))), c.chunks, humanize.IBytes(uint64(c.raw)), c.hashed)
	if skipped > 0 {
		vd.note("L2: subset %s: %d files have chunks outside this part and were not hashed whole", sub, skipped)
	}
	if c.reread > 0 {
		vd.note("L2: %s read twice (chunks arrived far ahead of their files)", humanize.IBytes(uint64(c.reread)))
	}
	if c.checked > 0 {
		vd.note("L2: %s of chunks no file proved read again with their IDs checked", humanize.IBytes(uint64(c.checked)))
	}
	if first > 0 {
		vd.note("L2: a chunk read without its ID check did not match its ID: all %s read again with every ID checked", humanize.IBytes(uint64(first)))
	}
	return nil
}

// newDataCheck plans a pass that reads and opens the blobs ids (opts.Locs
// their locations) and hashes the files hashable as their chunks arrive
// (stream), and returns the options to stream them with. With endToEnd
// the chunks those files use are opened without their keyed ID check
// (repo.StreamOptions.EndToEnd): each file's BLAKE3 checks them, and
// confirm checks the IDs of those no file proved. Findings about packs are
// made as the blobs arrive; those about files are left to report.
func (v *Verifier) newDataCheck(ctx context.Context, w *SnapWalk, vd *Verdict, tap tapFunc, ids []chunk.ID, hashable []WalkFile, opts repo.StreamOptions, endToEnd bool) (*dataCheck, repo.StreamOptions) {
	c := &dataCheck{v: v, w: w, vd: vd, ctx: ctx, mem: opts.Mem, uses: map[chunk.ID]int{}, waiting: map[chunk.ID][]*fileHash{},
		buf: map[chunk.ID]*[]byte{}, hashing: map[chunk.ID]int{}, evicted: map[chunk.ID]bool{}, failed: map[chunk.ID]bool{}}
	for _, f := range hashable {
		for _, id := range f.Node.Content {
			c.uses[id]++
		}
	}
	if endToEnd {
		// The chunks of the stream no file hashed uses keep their check:
		// few or none (--subset's partial files).
		c.endToEnd, c.ids, c.idChecked = true, ids, map[chunk.ID]bool{}
		for _, id := range ids {
			if c.uses[id] == 0 {
				c.idChecked[id] = true
			}
		}
		opts.EndToEnd = func(id chunk.ID) bool { return !c.idChecked[id] }
	}
	c.planUses(ids, hashable)
	for _, f := range hashable {
		fh := &fileHash{f: f}
		if tap != nil {
			fh.tap = tap(f)
		}
		c.files = append(c.files, fh)
		if len(f.Node.Content) == 0 {
			c.finish(fh)
			continue
		}
		c.waiting[f.Node.Content[0]] = append(c.waiting[f.Node.Content[0]], fh)
	}
	if tap == nil {
		// Files are hashed on the goroutines that open their chunks, as
		// the chunks are opened (dataCheck); L3's taps are written on the
		// consumer.
		opts.Consume = c.deliver
	}
	return c, opts
}

// stream runs the pass newDataCheck planned.
func (c *dataCheck) stream(ctx context.Context, ids []chunk.ID, opts repo.StreamOptions) error {
	var pack [32]byte
	return c.v.blobs.StreamBlobs(ctx, c.w.sn.Space, repo.DataBlob, ids, opts, func(b repo.StreamBlob) error {
		if err := ctx.Err(); err != nil {
			c.put(b.Pooled)
			return err
		}
		if c.packs == 0 || b.Loc.Pack != pack { // the next job
			pack = b.Loc.Pack
			c.packs++
		}
		if c.chunks == 0 {
			trace.Log(ctx, "verify", "first chunk")
		}
		c.deliverBlob(b)
		return nil
	})
}

// confirm, after a pass with endToEnd, reads again with their IDs checked
// the chunks that pass opened without and that no file proved: those of
// files whose BLAKE3 did not match, that broke on another chunk or never
// completed (none, in an intact repository). A chunk that failed already
// failed before its ID was checked, the same with it or without, unless it
// failed when read again after an eviction (checked then). ok: every
// one verifies, so the pass made the findings a pass that checked every
// ID makes, in the same order; else it is to be run again so.
func (c *dataCheck) confirm(ctx context.Context) (ok bool, err error) {
	c.mu.Lock()
	if c.reReadFailed {
		// A chunk that opened (unchecked) and failed when read again
		// (checked) would have failed in the stream with its ID checked,
		// and made its finding there.
		c.mu.Unlock()
		return false, nil
	}
	if c.hashed == len(c.files) {
		c.mu.Unlock()
		return true, nil // every file proven: so is every chunk opened unchecked
	}
	proven := map[chunk.ID]bool{}
	for _, fh := range c.files {
		if fh.done && fh.broken == nil && fh.bad == nil {
			for _, id := range fh.f.Node.Content {
				proven[id] = true
			}
		}
	}
	var ids []chunk.ID
	var locs []index.Location
	for _, id := range c.ids {
		if !c.idChecked[id] && !proven[id] && !c.failed[id] {
			ids = append(ids, id)
			locs = append(locs, c.w.locs[id])
		}
	}
	c.mu.Unlock()
	ok = true
	err = c.v.blobs.StreamBlobs(ctx, c.w.sn.Space, repo.DataBlob, ids, repo.StreamOptions{RunBytes: l2RunBytes, Sort: true, Buffer: repo.BufferPooled, Locs: locs},
		func(b repo.StreamBlob) error {
			c.put(b.Pooled)
			if b.K == 0 && !b.RunErr {
				c.checked += b.RunBytes
			}
			ok = ok && b.Err == nil
			return ctx.Err()
		})
	return ok, err
}

// orderJobs orders the packs to read so that the files advance together,
// as the backup that wrote them read them: of the files a pack read so far
// holds chunks of ("touched"), it takes the one that is furthest behind
// (the fewest bytes of it arrived) and reads the pack of its next chunk;
// when every touched file is complete it starts the next file in walk
// order. A backup reads several files at once and packs their chunks as
// they come, so a pack of WAL segments interleaves three segments' chunks;
// taking the files one after another instead (each file's packs in turn)
// delivered the other segments' chunks far ahead of their files, more than
// BufferBytes of them on the wal-heavy profile, and they were read twice.
// Starting files only as the packs reach them keeps the files in progress
// (and L3's segment checks) as few as the backup's. jobs not reached
// (none) keep their order at the end.
func orderJobs(files []WalkFile, locs map[chunk.ID]index.Location, byPack map[[32]byte]*packJob, jobs []*packJob) []*packJob {
	users := map[chunk.ID][]int{} // the files that use a chunk
	for i, f := range files {
		for _, id := range f.Node.Content {
			if u := users[id]; len(u) == 0 || u[len(u)-1] != i {
				users[id] = append(u, i)
			}
		}
	}
	done := make(map[[32]byte]bool, len(jobs))
	touched := make([]bool, len(files))
	h := &frontHeap{}
	touch := func(f int) {
		if !touched[f] {
			touched[f] = true
			heap.Push(h, frontItem{f: f})
		}
	}
	// advance moves it past the chunks already read or not to be read.
	advance := func(it *frontItem) {
		content := files[it.f].Node.Content
		for it.k < len(content) {
			l, ok := locs[content[it.k]]
			if ok && byPack[l.Pack] != nil && !done[l.Pack] {
				return
			}
			it.off += uint64(l.RawLength)
			it.k++
		}
	}
	order := make([]*packJob, 0, len(jobs))
	next := 0 // the next file in walk order not touched yet
	for {
		if h.Len() == 0 {
			for next < len(files) && touched[next] {
				next++
			}
			if next == len(files) {
				break
			}
			touch(next)
		}
		it := heap.Pop(h).(frontItem)
		k0 := it.k
		advance(&it)
		if it.k == len(files[it.f].Node.Content) {
			continue // every chunk of it arrives
		}
		if it.k == k0 { // furthest behind and waiting: read its next pack
			p := locs[files[it.f].Node.Content[it.k]].Pack
			done[p] = true
			order = append(order, byPack[p])
			for _, b := range byPack[p].blobs {
				for _, f := range users[b.id] {
					touch(f)
				}
			}
			advance(&it)
			if it.k == len(files[it.f].Node.Content) {
				continue
			}
		}
		heap.Push(h, it)
	}
	for _, j := range jobs {
		if !done[j.pack] {
			order = append(order, j)
		}
	}
	return order
}

// frontItem is a file's place in orderJobs: its next chunk k and the bytes
// before it. frontHeap pops the file with the fewest bytes arrived, the
// first in walk order among equals.
type frontItem struct {
	f, k int
	off  uint64
}

type frontHeap struct{ items []frontItem }

func (h *frontHeap) Len() int { return len(h.items) }
func (h *frontHeap) Less(a, b int) bool {
	x, y := h.items[a], h.items[b]
	return x.off < y.off || x.off == y.off && x.f < y.f
}
func (h *frontHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *frontHeap) Push(x any)    { h.items = append(h.items, x.(frontItem)) }
func (h *frontHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}

// fileHash is a file being hashed as its chunks arrive. While a goroutine
// hashes one of its chunks (outside dataCheck.mu) it is in no waiting
// list, so only that goroutine advances it.
type fileHash struct {
	f    WalkFile
	next int          // index of the next chunk it needs
	h    chunk.Hasher // its state from a pool while the file is hashed
	n    uint64
	tap  fileTap
	// done: complete or given up; then broken says why it could not be
	// read whole, or bad why its bytes are not the tree's (report).
	done        bool
	broken, bad error
}

// dataCheck is L2's consumer: it feeds arriving chunks to the files that
// need them. Chunks arrive on the goroutines that open them
// (StreamOptions.Consume) and, the damaged ones and L3's, on the stream's
// consumer; mu guards everything below it but the files' hashers, each
// written by one goroutine at a time (advance), outside mu. Findings about
// files are kept in their fileHash and reported in walk order at the end
// (report), so that the verdict does not depend on which goroutine hashed
// what first.
type dataCheck struct {
	v   *Verifier
	w   *SnapWalk
	vd  *Verdict
	ctx context.Context
	mem *slabmem.Mem // the stream's StreamOptions.Mem: where its plaintexts go back (put)

	mu   sync.Mutex
	uses map[chunk.ID]int // remaining uses by files still being hashed
	// next[id] are the stream positions (indexes in the order blobs are
	// read) at which the remaining uses of a chunk can be consumed,
	// ascending: eviction drops the held chunks needed last (planUses).
	next     map[chunk.ID][]int
	waiting  map[chunk.ID][]*fileHash
	buf      map[chunk.ID]*[]byte // pooled plaintexts held for files not there yet
	hashing  map[chunk.ID]int     // held chunks being hashed outside mu: not evicted
	bufBytes int64
	evicted  map[chunk.ID]bool
	failed   map[chunk.ID]bool
	hashed   int
	reread   int64
	files    []*fileHash // every file hashed, in walk order

	// endToEnd: the stream opens the chunks of ids, the blobs it reads,
	// without their ID check, but for those in idChecked (read-only
	// during the stream)
	endToEnd     bool
	ids          []chunk.ID
	idChecked    map[chunk.ID]bool
	reReadFailed bool // an evicted chunk failed when read again (reRead)

	// the stream's consumer's alone
	packs, chunks int
	read, raw     int64
	checked       int64 // bytes confirm read
}

// deliverBlob, on the stream's consumer, counts a chunk and hands it to
// the files waiting for it unless Consume did. A run that could not be
// read is one finding for its pack, not one per chunk.
func (c *dataCheck) deliverBlob(b repo.StreamBlob) {
	if b.K == 0 && !b.RunErr {
		c.read += b.RunBytes
	}
	if b.Err != nil {
		c.mu.Lock() // a re-read (advance) may report too
		switch {
		case !b.RunErr:
			c.vd.fail(L2, "pack "+repo.ShortHex(b.Loc.Pack), "%v", b.Err)
		case b.K == 0:
			c.vd.fail(L2, "pack "+repo.ShortHex(b.Loc.Pack), "%v (%d chunks of this snapshot)", b.Err, b.RunBlobs)
		}
		c.mu.Unlock()
		c.failChunk(b.ID, b.Err)
		return
	}
	c.chunks++
	if b.Consumed {
		c.raw += int64(b.Loc.RawLength)
		return
	}
	c.raw += int64(len(b.Data))
	c.deliver(b.ID, b.Pooled)
}

// deliver takes ownership of the pooled plaintext d of chunk id, verified,
// and hashes it into the files waiting for it (and whatever held chunks
// follow in them). Any goroutine may call it.
func (c *dataCheck) deliver(id chunk.ID, d *[]byte) {
	c.mu.Lock()
	ws := c.waiting[id] // none if it is held already
	delete(c.waiting, id)
	_, held := c.buf[id]
	if c.uses[id] == 0 || held {
		// No file being hashed needs it (subset, or a file already
		// broken), or the same chunk came twice and is held already.
		c.mu.Unlock()
		c.put(d)
		return
	}
	c.buf[id] = d
	c.bufBytes += int64(len(*d))
	c.mu.Unlock()
	for _, fh := range ws {
		c.advance(fh)
	}
	c.mu.Lock()
	if c.bufBytes > c.v.opts.BufferBytes {
		c.evict()
	}
	c.mu.Unlock()
}

// planUses computes, for every chunk the hashable files use, the stream
// positions at which each use can be consumed: a file's k-th chunk is
// hashed once it and all the chunks before it have arrived, so its use
// comes at the latest arrival among content[0..k]. ids is the order in
// which the stream delivers the blobs (each once).
func (c *dataCheck) planUses(ids []chunk.ID, files []WalkFile) {
	arrival := make(map[chunk.ID]int, len(ids))
	for i, id := range ids {
		if _, ok := arrival[id]; !ok {
			arrival[id] = i
		}
	}
	c.next = make(map[chunk.ID][]int, len(arrival))
	for _, f := range files {
		t := 0
		for _, id := range f.Node.Content {
			t = max(t, arrival[id])
			c.next[id] = append(c.next[id], t)
		}
	}
	for _, ts := range c.next {
		if len(ts) > 1 {
			sort.Ints(ts)
		}
	}
}

// evict drops held chunks, those needed last first (Belady's rule: the
// chunk whose next use is farthest is the one whose re-read can wait
// longest, and meanwhile others may be consumed), until the held bytes
// are down to seven eighths of the budget, so that evictions come in
// batches. Before planUses a chunk's next use counts as the farthest.
// A chunk being hashed stays. c.mu is held.
func (c *dataCheck) evict() {
	held := make([]chunk.ID, 0, len(c.buf))
	for id := range c.buf {
		if c.hashing[id] == 0 {
			held = append(held, id)
		}
	}
	nextUse := func(id chunk.ID) int {
		if ts := c.next[id]; len(ts) > 0 {
			return ts[0]
		}
		return math.MaxInt
	}
	sort.Slice(held, func(a, b int) bool { return nextUse(held[a]) > nextUse(held[b]) })
	for _, id := range held {
		if c.bufBytes <= c.v.opts.BufferBytes-c.v.opts.BufferBytes/8 {
			break
		}
		d := c.buf[id]
		c.bufBytes -= int64(len(*d))
		c.put(d)
		delete(c.buf, id)
		c.evicted[id] = true
	}
}

// advance feeds fh every chunk it can get, in order, until it has to wait.
// It hashes outside c.mu: the chunk it hashes is pinned (hashing) and
// counted in uses until it is released afterwards.
func (c *dataCheck) advance(fh *fileHash) {
	content := fh.f.Node.Content
	c.mu.Lock()
	defer c.mu.Unlock()
	for fh.next < len(content) {
		id := content[fh.next]
		d, ok := c.buf[id]
		if !ok {
			switch {
			case c.failed[id]:
				c.breakFile(fh, fmt.Errorf("chunk %s failed verification", id.Short()))
				return
			case c.evicted[id]:
				if d = c.reRead(fh, id); d == nil {
					return
				}
			default:
				c.waiting[id] = append(c.waiting[id], fh)
				return
			}
		}
		data := *d
		c.hashing[id]++
		c.mu.Unlock()
		fh.h.Write(data)
		if fh.tap != nil {
			_, _ = fh.tap.Write(data) // a tap that stopped reading reports why in finish
		}
		c.mu.Lock()
		if c.hashing[id]--; c.hashing[id] == 0 {
			delete(c.hashing, id)
		}
		fh.n += uint64(len(data))
		fh.next++
		c.release(id)
	}
	c.finish(fh)
}

// reRead reads an evicted chunk again for fh, holding c.mu (it is rare:
// chunks that arrived far ahead of their files). On failure it breaks fh
// and returns nil.
func (c *dataCheck) reRead(fh *fileHash, id chunk.ID) *[]byte {
	loc := c.w.locs[id]
	var d *[]byte
	var err error
	opts := repo.StreamOptions{Buffer: repo.BufferPooled, Locs: []index.Location{loc}}
	serr := c.v.blobs.StreamBlobs(c.ctx, c.w.sn.Space, repo.DataBlob, []chunk.ID{id}, opts, func(b repo.StreamBlob) error {
		d, err = b.Pooled, b.Err
		return nil
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		c.put(d)
		c.vd.fail(L2, "pack "+repo.ShortHex(loc.Pack), "%v", err)
		c.failed[id] = true
		c.reReadFailed = true
		c.breakFile(fh, err)
		return nil
	}
	c.reread += int64(loc.Length)
	delete(c.evicted, id)
	c.buf[id] = d
	c.bufBytes += int64(len(*d))
	return d
}

// put gives back a plaintext the stream delivered pooled: to the stream's
// slabs if it is theirs, else to chunk's pools (repo.PutPooled).
func (c *dataCheck) put(d *[]byte) { repo.PutPooled(c.mem, d) }

// drop gives back every chunk held, once the pass is over (a pass run
// again starts with its own).
func (c *dataCheck) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, d := range c.buf {
		c.put(d)
		delete(c.buf, id)
	}
	c.bufBytes = 0
}

// release counts one use of id done. c.mu is held.
func (c *dataCheck) release(id chunk.ID) {
	c.uses[id]--
	if ts := c.next[id]; len(ts) > 0 {
		c.next[id] = ts[1:]
	}
	if c.uses[id] > 0 {
		return
	}
	if d, ok := c.buf[id]; ok {
		c.bufBytes -= int64(len(*d))
		c.put(d)
		delete(c.buf, id)
	}
	delete(c.uses, id)
	delete(c.evicted, id)
	delete(c.next, id)
}

// failChunk breaks the files waiting for a chunk that could not be read
// or did not verify; those that reach it later break then (advance).
func (c *dataCheck) failChunk(id chunk.ID, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed[id] = true
	ws := c.waiting[id]
	delete(c.waiting, id)
	for _, fh := range ws {
		c.breakFile(fh, fmt.Errorf("chunk %s: %w", id.Short(), err))
	}
}

// breakFile gives up on a file whose data is damaged. c.mu is held.
func (c *dataCheck) breakFile(fh *fileHash, err error) {
	for i := fh.next; i < len(fh.f.Node.Content); i++ {
		c.release(fh.f.Node.Content[i])
	}
	fh.next = len(fh.f.Node.Content)
	fh.h.Reset() // not hashing: breakFile runs where fh waits for a chunk
	fh.done, fh.broken = true, err
	if fh.tap != nil {
		fh.tap.finish(fmt.Errorf("damaged data: %w", err))
	}
}

// finish checks a file's size and BLAKE3 once all its chunks went
// through. c.mu is held.
func (c *dataCheck) finish(fh *fileHash) {
	n := fh.f.Node
	sum := repo.Hash(fh.h.Sum256())
	var err error
	switch {
	case fh.n != n.Size:
		err = fmt.Errorf("its chunks hold %d bytes, the tree says %d", fh.n, n.Size)
	case n.BLAKE3 == nil || sum != *n.BLAKE3:
		err = fmt.Errorf("content BLAKE3 %s does not match the tree's", sum.String()[:16])
	}
	fh.done, fh.bad = true, err
	if err == nil {
		c.hashed++
	}
	if fh.tap != nil {
		fh.tap.finish(err)
	}
}

// report gives the findings about files, in walk order, once the stream
// ended: a file that never completed, one that could not be read whole (at
// most maxFileFindings of those), one whose bytes are not the tree's.
func (c *dataCheck) report() {
	c.mu.Lock()
	defer c.mu.Unlock()
	broken := 0
	for _, fh := range c.files {
		if !fh.done {
			c.vd.fail(L2, "file "+fh.f.Rel, "not completed: chunk %s never arrived", fh.f.Node.Content[fh.next].Short())
			c.breakFile(fh, errors.New("incomplete"))
		}
		switch {
		case fh.broken != nil:
			broken++
			if broken <= maxFileFindings {
				c.vd.fail(L2, "file "+fh.f.Rel, "cannot be read whole: %v", fh.broken)
			} else if broken == maxFileFindings+1 {
				c.vd.fail(L2, "snapshot "+c.w.sn.ShortID(), "more damaged files not listed")
			}
		case fh.bad != nil:
			c.vd.fail(L2, "file "+fh.f.Rel, "%v", fh.bad)
		}
	}
}
