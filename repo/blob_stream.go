package repo

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"

	"memento/chunk"
	"memento/index"
	"memento/repo/slabmem"
)

// The one read path of blobs: StreamBlobs groups the blobs asked for into
// runs of pack neighbours (pack_scan.go), reads runs ahead of the consumer
// within a bound, opens every blob (authenticate, decrypt, decompress,
// compare with its ID: openSealed) into the buffers the caller asked for,
// and, when a blob is damaged, reads it from another pack holding a copy if
// the index knows one. Restore, L2 verification and the FUSE mount read
// through it, and so do prune (trees, and the blobs it repacks) and check
// --read-data, which read at the locations of pack headers (Locs) and
// from packs already in memory (Packed). ReadBlob opens its single blob
// with the same code (openSealed). restic's streamPack is the model.

// BufferPolicy says where the plaintext StreamBlobs hands over lives and who
// owns it.
type BufferPolicy int

const (
	// BufferFresh: Data is a fresh slice that fn may keep; it is never
	// reused. The blob is decrypted in place in the run's buffer and
	// decompressed, or copied, into the fresh slice (the FUSE mount's cache
	// holds it).
	BufferFresh BufferPolicy = iota
	// BufferPooled: Data is (*Pooled), a buffer of chunk.Buffer (or of
	// StreamOptions.Mem) that fn now owns and gives back with PutPooled
	// (L2 holds chunks for files not there yet).
	BufferPooled
	// BufferBorrowed: Data is valid only during the call to fn; StreamBlobs
	// reuses its buffer afterwards (restore writes it and is done).
	BufferBorrowed
)

// StreamOptions tune StreamBlobs. The zero value reads one run at a time on
// the calling goroutine, in the order given, fresh buffers, no fallback.
type StreamOptions struct {
	// RunBytes bounds one ranged read (default runMaxBytes).
	RunBytes int64
	// RunGap bounds the bytes of unwanted blobs a run reads through between
	// two wanted ones (default runMaxGap): a reader of a few small blobs
	// spread over a pack (a directory's subtrees) sets it low.
	RunGap int64
	// Ramp makes the first runs smaller, RunBytes/8 doubling run by run up
	// to RunBytes, so that the first blobs can be opened while the runs
	// after them are still being read: a stream that started with Ahead's
	// worth of full runs in flight had the cores idle until the disk had
	// served most of them (L2 verify). The last runs shrink likewise (a run
	// is at most half of what is left, down to RunBytes/8), so that the
	// stream does not end with one core opening one long run.
	Ramp bool
	// Sort reads the blobs in pack order (pack, offset) rather than in the
	// order given, so neighbours given apart still share a read. Without it
	// a run only groups blobs that are neighbours in the order given.
	Sort bool
	// Ahead bounds the stored bytes of runs read and opened ahead of fn,
	// each run on a goroutine of its own. 0 reads each run when fn is done
	// with the previous one, on the calling goroutine.
	Ahead int64
	// AheadHeld makes Ahead bound what the runs ahead hold in memory, their
	// stored bytes and the plaintext of their blobs (the index's raw
	// lengths), not their stored bytes alone. Under BufferPooled and
	// BufferBorrowed every blob of a run read ahead waits in a buffer of
	// its own until it is delivered, so with compressed data the stored
	// bytes are a fraction of the memory: a restore of a data dir held 12
	// MiB of stored runs and some 30 MiB of plaintext per file, and ran at
	// memento's 200 MiB heap limit.
	AheadHeld bool
	// Share, if set, is a read-ahead budget and a set of turns to open
	// blobs shared with other streams (NewStreamShare): its size and
	// workers replace Ahead's and Workers'. Streams run one after the
	// other can then overlap, the next one reading its first runs while
	// the last runs of the one before are opened, with no more memory or
	// workers than one of them alone (L2 of several snapshots).
	Share *StreamShare
	// Started, if set, is called once every run of a stream with Ahead
	// has been started (read, being read or opened), on a goroutine of
	// the stream's: what is left is fn's, and a Share's budget frees as it
	// goes. It is not called when the stream stops before (fn's error,
	// ctx); a stream with no run to read (every blob missing from the
	// index) calls it at once.
	Started func()
	// Workers bounds the runs being opened at once (CPU work) when Ahead >
	// 0; 0 means no bound beyond Ahead's.
	Workers int
	// AroundCache reads runs with blobRun.fetch (around the page cache of a
	// local repository) instead of blobRun.read; see fetch for when it pays.
	AroundCache bool
	// Buffer is the buffer policy of the plaintexts handed to fn.
	Buffer BufferPolicy
	// Fallback reads a blob that cannot be read or does not verify from
	// another pack holding a copy of it, when the index knows one, and logs
	// a warning naming the damaged pack. Without it (verification, which
	// reports the damage) the blob's error is delivered.
	Fallback bool
	// Who prefixes the fallback's log message, e.g. "restore" or "mount".
	Who string
	// Logger receives the fallback's warning (default r.Logger()).
	Logger *slog.Logger
	// OnRead, if set, is called with a run's length after it was read
	// whole, on the goroutine that read it (progress counters).
	OnRead func(n int64)
	// Locs, if set, are the locations of ids, index by index (as many), which
	// are then not looked up in the index: prune and check work from pack headers,
	// which know packs the index may not.
	Locs []index.Location
	// Packed, if set, is the whole pack all blobs lie in, already read
	// (check --read-data hashes whole packs): runs are cut from it instead
	// of being read. Blobs are decrypted in place, so Packed is scratch
	// afterwards. A blob beyond its end gets a truncation error.
	Packed []byte
	// Stored delivers each blob's stored form (compressed or not, as in
	// the pack) instead of its plaintext, once the plaintext is verified:
	// prune's repack seals it again unchanged. No fallback then.
	Stored bool
	// Alloc, under BufferFresh, gives the memory a blob's plaintext is
	// opened into (any length, capacity at least n; nil: a fresh slice),
	// and with AroundCache the buffer a run is read into; Free takes back
	// what Alloc gave for a run once it is opened, for a blob that
	// failed and for one not delivered (fn's error, cancellation), so the
	// caller's memory is not lost to damaged blobs; it must ignore a slice
	// Alloc did not give (a blob read from another copy, or fresh when
	// Alloc had none). The
	// FUSE mount passes memory it has already faulted in: on a VM, first
	// touching fresh pages cost more CPU than decrypting and
	// decompressing them.
	Alloc func(n int) []byte
	Free  func([]byte)
	// Mem, if set, is memory of the caller's (huge-page slabs it owns and
	// unmaps once every stream using it has ended and it holds none of
	// their buffers: slabmem) that the stream takes its large buffers from
	// while it has room, instead of the Go heap: with AroundCache the
	// buffers runs are read into, under BufferFresh without Alloc the
	// plaintexts (Free is then Mem.Put: fn gives each back with it), and
	// under BufferPooled the plaintexts fn gets in Pooled (or Consume), to
	// be given back with PutPooled, never chunk.PutBuffer. A data dir's L2
	// faulted in ~45,000 fresh 4 KiB pages of heap for them, and a
	// restore ~50,000 (slabmem's doc).
	Mem *slabmem.Mem
	// Consume, under BufferPooled, takes each blob opened without error on
	// the goroutine that opened it (one of Workers, still holding its turn
	// of a core), right after it was verified and before the runs ahead of
	// it in the order are delivered; fn then gets the blob with Consumed
	// set and Data and Pooled nil. Consume owns Pooled and may be called
	// concurrently. L2 verify hashes each file as its chunks are opened,
	// so that a chunk's plaintext is hashed while it is in the cache and
	// its buffer goes back to the pool at once instead of waiting with its
	// run for fn (half the heap of a verify, and its page faults, were
	// plaintexts waiting).
	Consume func(id chunk.ID, data *[]byte)
	// EndToEnd, if set, names the data blobs whose plaintext the caller
	// checks end to end in this same run: each lies in a file whose whole
	// content it hashes and compares with the tree's BLAKE3. Their keyed
	// chunk-ID check is skipped; the AEAD (whose associated data binds the
	// blob's type and ID), the decompression, the length check against the
	// index and the fallback stay, and a copy the fallback reads is checked
	// in full. A caller whose end-to-end check fails reads the blobs again
	// without EndToEnd, which names the wrong chunk (docs/security.md). Readers
	// without a whole-content check (the mount, dump, cat) never set it;
	// Stored and tree blobs ignore it. It is called concurrently.
	EndToEnd func(id chunk.ID) bool
}

// StreamShare is a read-ahead budget and turns to open blobs that several
// streams share (StreamOptions.Share).
type StreamShare struct {
	ahead int64
	sem   *semaphore.Weighted
	cpu   chan struct{} // nil: no bound beyond ahead's
}

// NewStreamShare returns a budget of ahead bytes (> 0) and workers turns
// (0: no bound) to share between streams.
func NewStreamShare(ahead int64, workers int) *StreamShare {
	sh := &StreamShare{ahead: ahead, sem: semaphore.NewWeighted(ahead)}
	if workers > 0 {
		sh.cpu = make(chan struct{}, workers)
	}
	return sh
}

// StreamBlob is one blob delivered by StreamBlobs.
type StreamBlob struct {
	Index int      // position in the blobs given
	ID    chunk.ID // the blob
	Loc   index.Location
	// Data is the verified plaintext, nil with Err. Its ownership follows
	// StreamOptions.Buffer.
	Data []byte
	// Pooled holds Data under BufferPooled; fn gives it back with
	// PutPooled(opts.Mem, Pooled).
	Pooled *[]byte
	// Err is why the blob could not be delivered: a *CorruptError naming
	// the pack and the blob, the run's read error, an index miss, or ctx's
	// error.
	Err error
	// K is the blob's position in the run (one ranged read) it came in,
	// RunBytes the stored bytes of that read and RunBlobs its blobs; a
	// caller counts a run when K is 0. RunErr says Err is the whole run's
	// read error (the same for each of its blobs), so a caller can report
	// it once per run. RunBlobs is 0 for a blob the index does not know.
	K        int
	RunBytes int64
	RunBlobs int
	RunErr   bool
	// Copy is the location of the copy delivered instead of a damaged
	// Loc, when the fallback was used.
	Copy *index.Location
	// Consumed says StreamOptions.Consume took the verified plaintext.
	Consumed bool
}

// StreamBlobs reads the blobs ids of type t of a space and calls fn once per
// id, on the calling goroutine, with its verified plaintext or the error that
// kept it from being read. Blobs are delivered run by run, in the order of
// the runs (the order given, or pack order with opts.Sort), blobs of a run in
// pack order. An id given twice is read twice. A blob the index does not know
// gets its own error and the others are still delivered.
//
// If fn returns an error, StreamBlobs stops and returns it; the blobs not
// delivered yet are not. If ctx is cancelled, every blob not yet delivered
// gets ctx's error and StreamBlobs returns it. Otherwise it returns nil:
// errors of single blobs are fn's to judge.
func (r *Repository) StreamBlobs(ctx context.Context, space string, t BlobType, ids []chunk.ID, opts StreamOptions, fn func(StreamBlob) error) error {
	if len(ids) == 0 {
		return nil
	}
	opts.RunBytes = cmp.Or(opts.RunBytes, runMaxBytes)
	opts.RunGap = cmp.Or(opts.RunGap, runMaxGap)
	if opts.Logger == nil {
		opts.Logger = r.log
	}
	s := &blobStream{r: r, space: space, t: t, opts: opts}
	runs, which, missing := s.plan(ids)
	for _, m := range missing {
		if err := ctx.Err(); err != nil {
			m.Err = err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	if opts.Share != nil {
		opts.Ahead, s.opts.Ahead = opts.Share.ahead, opts.Share.ahead
	}
	if opts.Ahead <= 0 {
		for n, run := range runs {
			if err := ctx.Err(); err != nil {
				return deliverCancelled(err, runs[n:], which[n:], fn)
			}
			if err := s.deliver(s.readRun(ctx, run, which[n]), fn); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	return s.ahead(ctx, runs, which, fn)
}

// blobStream is one call of StreamBlobs.
type blobStream struct {
	r     *Repository
	space string
	t     BlobType
	opts  StreamOptions
	cpu   chan struct{} // a token per run opening blobs, when Workers bounds them
}

// plan locates the blobs and cuts them into runs: which[n][k] is the index
// in ids of runs[n].blobs[k]. Blobs the index lacks come back as errors.
func (s *blobStream) plan(ids []chunk.ID) (runs []*blobRun, which [][]int, missing []StreamBlob) {
	if s.opts.Locs != nil {
		runs, which = s.cut(ids, func(i int) index.Location { return s.opts.Locs[i] }, nil)
		return runs, which, nil
	}
	locs, err := s.r.Locate(s.space, ids)
	if err != nil {
		// Some blob is missing from the index: find out which, blob by
		// blob, and still read the others.
		locs = make(map[chunk.ID]index.Location, len(ids))
		for i, id := range ids {
			l, err := s.r.Locate(s.space, []chunk.ID{id})
			if err != nil {
				missing = append(missing, StreamBlob{Index: i, ID: id, Err: err})
				continue
			}
			locs[id] = l[id]
		}
	}
	order := make([]int, 0, len(ids))
	for i, id := range ids {
		if _, ok := locs[id]; ok {
			order = append(order, i)
		}
	}
	runs, which = s.cut(ids, func(i int) index.Location { return locs[ids[i]] }, order)
	return runs, which, missing
}

// cut cuts the blobs order (indexes in ids; all of them if nil) into runs,
// sorted first with opts.Sort; loc gives the location of ids[i].
func (s *blobStream) cut(ids []chunk.ID, loc func(i int) index.Location, order []int) (runs []*blobRun, which [][]int) {
	if order == nil {
		order = make([]int, len(ids))
		for i := range order {
			order[i] = i
		}
	}
	if s.opts.Sort {
		slices.SortFunc(order, func(a, b int) int {
			la, lb := loc(a), loc(b)
			if c := bytes.Compare(la.Pack[:], lb.Pack[:]); c != 0 {
				return c
			}
			return cmp.Or(cmp.Compare(la.Offset, lb.Offset), cmp.Compare(a, b))
		})
	}
	minRun := max(s.opts.RunBytes/8, 1)
	limit, ramp := s.opts.RunBytes, s.opts.RunBytes // the bound of the run being cut; the ramp's
	var left int64                                  // the stored bytes of the blobs not cut yet
	if s.opts.Ramp {
		limit, ramp = minRun, minRun
		for _, i := range order {
			left += int64(loc(i).Length)
		}
	}
	for _, i := range order {
		l := loc(i)
		if n := len(runs); n > 0 && runs[n-1].add(ids[i], l, limit, s.opts.RunGap) {
			which[n-1] = append(which[n-1], i)
			left -= int64(l.Length)
			continue
		}
		if s.opts.Ramp {
			if len(runs) > 0 {
				ramp = min(2*ramp, s.opts.RunBytes)
			}
			limit = min(ramp, max(left/2, minRun))
		}
		left -= int64(l.Length)
		runs = append(runs, newBlobRun(ids[i], l))
		which = append(which, []int{i})
	}
	return runs, which
}

// readRun reads a run and opens each of its blobs, falling back to other
// copies of the damaged ones when asked to.
func (s *blobStream) readRun(ctx context.Context, run *blobRun, which []int) []StreamBlob {
	out := make([]StreamBlob, len(run.blobs))
	for k, b := range run.blobs {
		out[k] = StreamBlob{Index: which[k], ID: b.ID, Loc: b.Loc, K: k, RunBytes: run.n, RunBlobs: len(run.blobs)}
	}
	var rb runBuf
	var err error
	switch {
	case s.opts.Packed != nil:
		if end := run.off + run.n; end <= int64(len(s.opts.Packed)) {
			rb = runBuf{b: s.opts.Packed[run.off:end]}
		} else {
			err = run.readError(ctx, io.ErrUnexpectedEOF)
		}
	case s.opts.AroundCache:
		rb, err = run.fetch(ctx, s.r.be, s.alloc())
	default:
		var buf *[]byte
		if buf, err = run.read(ctx, s.r.be); err == nil {
			rb = runBuf{mem: buf, b: *buf}
		}
	}
	if err == nil {
		defer rb.free()
		if s.opts.OnRead != nil {
			s.opts.OnRead(run.n)
		}
	}
	if err == nil && s.cpu != nil {
		select {
		case s.cpu <- struct{}{}:
			defer func() { <-s.cpu }()
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	mode := openFresh
	if s.opts.Buffer != BufferFresh {
		mode = openPooled
	}
	for k := range out {
		sb := &out[k]
		if err != nil {
			sb.Err, sb.RunErr = err, true
		} else {
			e2e := s.t == DataBlob && !s.opts.Stored && s.opts.EndToEnd != nil && s.opts.EndToEnd(sb.ID)
			sb.Data, sb.Pooled, sb.Err = s.r.openSealed(ctx, run.sealed(rb.b, k), s.space, s.t, sb.ID, sb.Loc, mode, s.opts.Stored, e2e, s.alloc())
			if sb.Err == nil && !e2e && !s.opts.Stored && s.t == DataBlob && storedWhole(sb.Loc) && k+1 < len(out) && out[k+1].Loc.Flags&FlagMember != 0 {
				// A whole blob followed by a member: a group and the first
				// of its members, as AddGroup writes them. Its members,
				// opened next, find it decoded (check --read-data opens
				// every blob of a pack: each group was read and decoded
				// twice).
				s.r.addGroup(groupKey{StorageSpace(s.space), sb.ID}, sb.Data)
			}
		}
		if sb.Err != nil && s.opts.Fallback && !s.opts.Stored && ctx.Err() == nil {
			s.otherCopy(ctx, sb)
		}
		if sb.Err == nil && sb.Pooled != nil && s.opts.Consume != nil && s.opts.Buffer == BufferPooled {
			s.opts.Consume(sb.ID, sb.Pooled)
			sb.Data, sb.Pooled, sb.Consumed = nil, nil, true
		}
	}
	return out
}

// alloc is the allocator of the buffers StreamOptions asked for.
func (s *blobStream) alloc() blobAlloc {
	if s.opts.Buffer != BufferFresh {
		return blobAlloc{mem: s.opts.Mem}
	}
	return blobAlloc{alloc: s.opts.Alloc, free: s.opts.Free, mem: s.opts.Mem}
}

// blobAlloc gives openSealed the memory of a plaintext and fetch a run's:
// the caller's (StreamOptions.Alloc, or Mem) or, without it or when it has
// none, a new slice (fresh plaintexts) or chunk's pools (pooled ones, runs).
type blobAlloc struct {
	alloc func(n int) []byte
	free  func([]byte)
	mem   *slabmem.Mem
}

// take returns an empty slice with capacity at least n of the caller's
// memory (Alloc, else Mem), or nil.
func (a blobAlloc) take(n int) []byte {
	var b []byte
	switch {
	case a.alloc != nil:
		b = a.alloc(n)
	case a.mem != nil:
		b = a.mem.Get(n)
	}
	if cap(b) < n {
		a.put(b)
		return nil
	}
	return b[:0]
}

// get returns an empty slice with capacity at least n.
func (a blobAlloc) get(n int) []byte {
	if b := a.take(n); b != nil {
		return b
	}
	return make([]byte, 0, n)
}

// put gives back a slice from get or take that will not be delivered.
func (a blobAlloc) put(b []byte) {
	switch {
	case cap(b) == 0:
	case a.free != nil:
		a.free(b)
	case a.alloc == nil:
		a.mem.Put(b)
	}
}

// pooled returns a pooled plaintext buffer (BufferPooled), of Mem if it has
// room, else of chunk's pools.
func (a blobAlloc) pooled(n int) *[]byte {
	if b := a.mem.Get(n); b != nil {
		return &b
	}
	return chunk.Buffer(n)
}

// putPooled gives back a buffer from pooled.
func (a blobAlloc) putPooled(p *[]byte) { PutPooled(a.mem, p) }

// PutPooled gives back a plaintext StreamBlobs delivered under BufferPooled
// (StreamBlob.Pooled, or Consume's) with mem its StreamOptions.Mem: to mem
// if it is mem's, else to chunk's pools (chunk.PutBuffer). A nil p is
// nothing to give back.
func PutPooled(mem *slabmem.Mem, p *[]byte) {
	if p != nil && !mem.Put(*p) {
		chunk.PutBuffer(p)
	}
}

// otherCopy reads sb's blob from a pack other than the damaged one, if the
// index knows another; else sb keeps its error.
func (s *blobStream) otherCopy(ctx context.Context, sb *StreamBlob) {
	alts, err := s.r.ix.LookupAll(StorageSpace(s.space), []chunk.ID{sb.ID})
	if err != nil {
		return
	}
	for _, l := range alts[sb.ID] {
		if l.Pack == sb.Loc.Pack {
			continue
		}
		d, err := s.r.readBlobAt(ctx, s.space, s.t, sb.ID, l)
		if err != nil {
			continue
		}
		msg := "damaged blob replaced by another copy"
		if s.opts.Who != "" {
			msg = s.opts.Who + ": " + msg
		}
		s.opts.Logger.Warn(msg, "blob", sb.ID.Short(), "pack", ShortHex(sb.Loc.Pack), "copy", ShortHex(l.Pack), "err", sb.Err)
		sb.Data, sb.Err, sb.RunErr, sb.Copy = d, nil, false, &l
		if s.opts.Buffer != BufferFresh {
			sb.Pooled = &d
		}
		return
	}
}

// deliver hands a run's blobs to fn; under BufferBorrowed it gives their
// buffers back afterwards. Whatever fn did not get is given back too.
func (s *blobStream) deliver(blobs []StreamBlob, fn func(StreamBlob) error) error {
	var ferr error
	for _, sb := range blobs {
		if ferr == nil {
			ferr = fn(sb)
			if s.opts.Buffer != BufferBorrowed {
				continue
			}
		}
		if sb.Pooled != nil {
			s.alloc().putPooled(sb.Pooled)
		} else {
			s.alloc().put(sb.Data) // not delivered: back to StreamOptions.Free
		}
	}
	return ferr
}

// free gives back the buffers of blobs nobody will deliver.
func (s *blobStream) free(blobs []StreamBlob) {
	for _, sb := range blobs {
		if sb.Pooled != nil {
			s.alloc().putPooled(sb.Pooled)
		} else {
			s.alloc().put(sb.Data)
		}
	}
}

// deliverCancelled gives ctx's error to every blob of runs.
func deliverCancelled(err error, runs []*blobRun, which [][]int, fn func(StreamBlob) error) error {
	for n, run := range runs {
		for k, b := range run.blobs {
			if ferr := fn(StreamBlob{Index: which[n][k], ID: b.ID, Loc: b.Loc, Err: err, K: k, RunBytes: run.n, RunBlobs: len(run.blobs)}); ferr != nil {
				return ferr
			}
		}
	}
	return err
}

// ahead reads and opens every run on a goroutine of its own, started in
// order as long as at most opts.Ahead stored bytes are in flight, at most
// opts.Workers of them opening blobs at once; the calling goroutine takes
// them in order.
func (s *blobStream) ahead(ctx context.Context, runs []*blobRun, which [][]int, fn func(StreamBlob) error) error {
	ctx2, cancel := context.WithCancel(ctx)
	results := make([]chan []StreamBlob, len(runs))
	for i := range results {
		results[i] = make(chan []StreamBlob, 1)
	}
	weight := func(run *blobRun) int64 {
		w := run.n
		if s.opts.AheadHeld {
			for _, b := range run.blobs {
				w += int64(b.Loc.RawLength)
			}
		}
		return min(w, s.opts.Ahead)
	}
	sem := semaphore.NewWeighted(s.opts.Ahead)
	if sh := s.opts.Share; sh != nil {
		sem, s.cpu = sh.sem, sh.cpu
	} else if s.opts.Workers > 0 {
		s.cpu = make(chan struct{}, s.opts.Workers)
	}
	// launched runs acquired their weight, and each gives it back once:
	// when fn takes it, or as soon as it is opened if Consume took all its
	// blobs (it then holds nothing: its buffer is freed, its plaintexts are
	// Consume's), or on the way out, to a Share that outlives this stream.
	// A run waiting in order behind a slower one then no longer keeps the
	// runs after it from being read.
	//
	// Runs given back early still count in the order's window: the
	// weights of the runs from the first one fn has not taken to the last
	// one started stay within 3/2 of Ahead (aheadWindowNum), so that the
	// blobs opened ahead of those fn waits for (L2 holds them for their
	// files, up to its BufferBytes) stay bounded.
	launched := 0
	window := semaphore.NewWeighted(s.opts.Ahead * aheadWindowNum / aheadWindowDen)
	released := make([]atomic.Bool, len(runs))
	release := func(i int) {
		if released[i].CompareAndSwap(false, true) {
			sem.Release(weight(runs[i]))
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, run := range runs {
			if window.Acquire(ctx2, weight(run)) != nil {
				return
			}
			if sem.Acquire(ctx2, weight(run)) != nil {
				return
			}
			launched = i + 1
			wg.Add(1)
			go func() {
				defer wg.Done()
				blobs := s.readRun(ctx2, run, which[i])
				if holdsNothing(blobs) {
					release(i)
				}
				results[i] <- blobs
			}()
		}
		if s.opts.Started != nil {
			s.opts.Started()
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
		for i := range results { // give back what was not delivered
			select {
			case blobs := <-results[i]:
				s.free(blobs)
			default:
			}
		}
		for i := range launched {
			release(i)
		}
	}()
	for i := range runs {
		var blobs []StreamBlob
		select {
		case blobs = <-results[i]:
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			s.free(blobs)
			return deliverCancelled(err, runs[i:], which[i:], fn)
		}
		release(i)
		window.Release(weight(runs[i]))
		if err := s.deliver(blobs, fn); err != nil {
			return err
		}
	}
	return nil
}

// aheadWindowNum/aheadWindowDen of StreamOptions.Ahead bounds the runs from
// the first one not delivered yet to the last one started, when runs that
// hold nothing give their share of Ahead back before they are delivered
// (ahead): L2's read-ahead then fills Ahead with runs not yet opened (one
// read in flight on average before, the rest runs opened and waiting for
// their turn), while the chunks opened ahead of their files stay within
// L2's held bytes (without this window, 28 MiB of a wal-heavy data dir's
// chunks were evicted and read twice: docs/benchmarks.md, issue 18,
// session 14).
const aheadWindowNum, aheadWindowDen = 3, 2

// holdsNothing reports whether a run's opened blobs hold no buffer: each
// was taken by StreamOptions.Consume or failed.
func holdsNothing(blobs []StreamBlob) bool {
	for _, sb := range blobs {
		if sb.Data != nil || sb.Pooled != nil {
			return false
		}
	}
	return true
}

// openMode is where openSealed puts the plaintext.
type openMode int

const (
	openFresh  openMode = iota // a fresh slice of the raw length
	openPooled                 // a buffer of chunk.Buffer
)

// openSealed authenticates, decrypts, decompresses and verifies one sealed
// blob: the only place that does. sealed is scratch (a run's buffer, whose
// blobs never overlap). The result is a fresh slice (openFresh) or the
// pooled buffer returned (openPooled): an uncompressed blob is decrypted
// straight into it, a compressed one where it lies in sealed and then
// decompressed into it, so no blob costs a copy or a scratch buffer. With
// stored, the result is the blob's stored form rather than its plaintext,
// once that is verified. With endToEnd (StreamOptions.EndToEnd) the
// plaintext's keyed hash is not compared with id: the caller does. Every
// error is a *CorruptError naming the pack and the blob, but for a delta's
// base or a member's group that ctx cancelled.
func (r *Repository) openSealed(ctx context.Context, sealed []byte, space string, t BlobType, id chunk.ID, loc index.Location, mode openMode, stored, endToEnd bool, a blobAlloc) ([]byte, *[]byte, error) {
	what := "pack " + ShortHex(loc.Pack)
	ad := blobAD(t, id)
	direct := loc.Flags&(FlagCompressed|FlagDelta|FlagMember) == 0 && !stored // the plaintext is the result
	var plain, fresh []byte                                                   // fresh: what a.get gave, to give back on failure
	var out *[]byte
	var held []byte // *out as a.pooled gave it: what goes back on failure
	fail := func(err error) ([]byte, *[]byte, error) {
		if out != nil {
			*out = held
			a.putPooled(out)
		}
		a.put(fresh)
		return nil, nil, err
	}
	var err error
	switch {
	case !direct:
		plain, err = openInPlace(r.seal, sealed, ad)
	case mode == openPooled:
		out = a.pooled(len(sealed))
		held = *out
		plain, err = r.seal.open(held[:0], sealed, ad)
	default:
		fresh = a.get(max(0, len(sealed)-r.seal.overhead()))
		plain, err = r.seal.open(fresh, sealed, ad)
	}
	if err != nil {
		return fail(&CorruptError{What: what, Detail: fmt.Sprintf("%s blob %s at offset %d", t, id.Short(), loc.Offset), Err: err})
	}
	if loc.Flags&FlagMember != 0 { // a member: a slice of its group's plaintext (member.go)
		return r.openMember(ctx, plain, space, t, id, loc, mode, stored, endToEnd, a)
	}
	if loc.Flags&FlagDelta != 0 { // a delta: its base's plaintext with pages replaced (delta.go)
		return r.openDelta(ctx, plain, space, t, id, loc, mode, stored, a)
	}
	if stored {
		return verifyStored(r.ChunkKey(space), plain, t, id, loc, mode)
	}
	var raw []byte
	if direct {
		raw = plain
	} else {
		var dst []byte
		if mode == openPooled {
			out = a.pooled(int(loc.RawLength))
			held = *out
			dst = held
		} else {
			fresh = a.get(int(loc.RawLength))
			dst = fresh
		}
		if raw, err = decompressBlob(dst, plain, t); err != nil {
			return fail(&CorruptError{What: what, Detail: fmt.Sprintf("%s blob %s: decompress", t, id.Short()), Err: err})
		}
	}
	check := checkRaw
	if endToEnd {
		check = checkLength
	}
	if err := check(r.ChunkKey(space), raw, t, id, loc); err != nil {
		return fail(err)
	}
	// Decoded elsewhere than into the buffer given (never for a valid
	// blob): the caller gets raw, the buffer goes back.
	if cap(fresh) > 0 && !sameStart(raw, fresh) {
		a.put(fresh)
	}
	if out != nil {
		if !sameStart(raw, held) {
			a.mem.Put(held) // a chunk pool's is left to the GC, as raw's pool takes raw
		}
		*out = raw
	}
	return raw, out, nil
}

// sameStart reports whether a and b start at the same byte.
func sameStart(a, b []byte) bool { return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0] }

// copyOut copies b into a fresh slice or a pooled buffer, as mode says.
func copyOut(b []byte, mode openMode) ([]byte, *[]byte) {
	if mode == openPooled {
		out := chunk.Buffer(len(b))
		*out = append(*out, b...)
		return *out, out
	}
	return bytes.Clone(b), nil
}

// decompressBlob decompresses a blob's stored form onto dst.
func decompressBlob(dst, stored []byte, t BlobType) ([]byte, error) {
	if t == TreeBlob {
		// Trees list every chunk of their files, so a directory holding a
		// multi-GiB page file of 32 KiB chunks has a tree larger than any chunk.
		return chunk.DecompressMax(dst, stored, MaxBlobSize)
	}
	return chunk.Decompress(dst, stored)
}

// checkRaw compares a blob's plaintext with its length in the index and
// its ID (key is its space's chunk key).
func checkRaw(key chunk.Key, raw []byte, t BlobType, id chunk.ID, loc index.Location) error {
	if err := checkLength(key, raw, t, id, loc); err != nil {
		return err
	}
	if key.Sum(raw) != id {
		return Corruptf("pack "+ShortHex(loc.Pack), "%s blob %s: content does not match its ID", t, id.Short())
	}
	return nil
}

// checkLength is checkRaw without the ID: a blob whose plaintext the
// caller checks end to end (StreamOptions.EndToEnd). key is not used.
func checkLength(_ chunk.Key, raw []byte, t BlobType, id chunk.ID, loc index.Location) error {
	if uint32(len(raw)) != loc.RawLength {
		return Corruptf("pack "+ShortHex(loc.Pack), "%s blob %s: %d bytes, index says %d", t, id.Short(), len(raw), loc.RawLength)
	}
	return nil
}

// verifyStored is the rest of openSealed with stored: the decrypted stored
// form plain is decompressed into a pooled buffer only to be verified, and
// copied out as mode says.
func verifyStored(key chunk.Key, plain []byte, t BlobType, id chunk.ID, loc index.Location, mode openMode) ([]byte, *[]byte, error) {
	raw := plain
	var err error
	if loc.Flags&FlagCompressed != 0 {
		tmp := chunk.Buffer(int(loc.RawLength))
		defer chunk.PutBuffer(tmp)
		if raw, err = decompressBlob(*tmp, plain, t); err != nil {
			return nil, nil, &CorruptError{What: "pack " + ShortHex(loc.Pack), Detail: fmt.Sprintf("%s blob %s: decompress", t, id.Short()), Err: err}
		}
	}
	if err := checkRaw(key, raw, t, id, loc); err != nil {
		return nil, nil, err
	}
	d, out := copyOut(plain, mode)
	return d, out, nil
}

// openInPlace authenticates and decrypts sealed into its own storage and
// returns the plaintext, a subslice of sealed: openSealed opens each blob
// where it lies in the run's buffer, which saves an allocation and a copy
// of every blob, the largest cost of reading 1 GiB through a mount after
// the cryptography itself.
func openInPlace(s sealer, sealed, ad []byte) ([]byte, error) {
	switch s.(type) {
	case *aeadSealer:
		// The AEAD decrypts in place when the output starts exactly where
		// the ciphertext does, after the nonce.
		if n := nonceSize; len(sealed) >= n {
			return s.open(sealed[n:n], sealed, ad)
		}
	case *macSealer:
		return s.open(sealed[:0], sealed, ad) // the plaintext is sealed's prefix
	}
	return s.open(nil, sealed, ad)
}
