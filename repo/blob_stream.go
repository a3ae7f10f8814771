package repo

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"golang.org/x/sync/semaphore"

	"memento/chunk"
	"memento/index"
)

// The one read path of blobs: StreamBlobs groups the blobs asked for into
// runs of pack neighbours (pack_scan.go), reads runs ahead of the consumer
// within a bound, opens every blob (authenticate, decrypt, decompress,
// compare with its ID: openSealed) into the buffers the caller asked for,
// and, when a blob is damaged, reads it from another pack holding a copy if
// the index knows one. Restore, L2 verification and the FUSE mount read
// through it; ReadBlobAt, OpenBlob, OpenBlobPooled and ReadDataBlobs are
// thin uses of the same code. restic's streamPack is the model.

// BufferPolicy says where the plaintext StreamBlobs hands over lives and who
// owns it.
type BufferPolicy int

const (
	// BufferFresh: Data is a fresh slice that fn may keep; it is never
	// reused. The blob is decrypted in place in the run's buffer and
	// decompressed, or copied, into the fresh slice (the FUSE mount's cache
	// holds it).
	BufferFresh BufferPolicy = iota
	// BufferPooled: Data is (*Pooled), a buffer of chunk.Buffer that fn now
	// owns and gives back with chunk.PutBuffer (L2 holds chunks for files
	// not there yet).
	BufferPooled
	// BufferBorrowed: Data is valid only during the call to fn; StreamBlobs
	// reuses its buffer afterwards (restore writes it and is done).
	BufferBorrowed
)

// StreamOptions tune StreamBlobs. The zero value reads one run at a time on
// the calling goroutine, in the order given, fresh buffers, no fallback.
type StreamOptions struct {
	// RunBytes bounds one ranged read (default RunMaxBytes).
	RunBytes int64
	// Sort reads the blobs in pack order (pack, offset) rather than in the
	// order given, so neighbours given apart still share a read. Without it
	// a run only groups blobs that are neighbours in the order given.
	Sort bool
	// Ahead bounds the stored bytes of runs read and opened ahead of fn,
	// each run on a goroutine of its own. 0 reads each run when fn is done
	// with the previous one, on the calling goroutine.
	Ahead int64
	// Workers bounds the runs being opened at once (CPU work) when Ahead >
	// 0; 0 means no bound beyond Ahead's.
	Workers int
	// AroundCache reads runs with BlobRun.Fetch (around the page cache of a
	// local repository) instead of BlobRun.Read; see Fetch for when it pays.
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
	// chunk.PutBuffer.
	Pooled *[]byte
	// Err is why the blob could not be delivered: a *CorruptError naming
	// the pack and the blob, the run's read error, an index miss, or ctx's
	// error.
	Err error
	// Run is the read the blob came in and K its position there; RunErr
	// says Err is the whole run's read error (the same for each of its
	// blobs), so a caller can report it once per run. Run is nil for a
	// blob the index does not know.
	Run    *BlobRun
	K      int
	RunErr bool
	// Copy is the location of the copy delivered instead of a damaged
	// Loc, when the fallback was used.
	Copy *index.Location
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
	opts.RunBytes = cmp.Or(opts.RunBytes, RunMaxBytes)
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
// in ids of runs[n].Blobs[k]. Blobs the index lacks come back as errors.
func (s *blobStream) plan(ids []chunk.ID) (runs []*BlobRun, which [][]int, missing []StreamBlob) {
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
	if s.opts.Sort {
		slices.SortFunc(order, func(a, b int) int {
			la, lb := locs[ids[a]], locs[ids[b]]
			if c := bytes.Compare(la.Pack[:], lb.Pack[:]); c != 0 {
				return c
			}
			return cmp.Or(cmp.Compare(la.Offset, lb.Offset), cmp.Compare(a, b))
		})
	}
	for _, i := range order {
		if n := len(runs); n > 0 && runs[n-1].Add(ids[i], locs[ids[i]], s.opts.RunBytes) {
			which[n-1] = append(which[n-1], i)
			continue
		}
		runs = append(runs, NewBlobRun(ids[i], locs[ids[i]]))
		which = append(which, []int{i})
	}
	return runs, which, missing
}

// readRun reads a run and opens each of its blobs, falling back to other
// copies of the damaged ones when asked to.
func (s *blobStream) readRun(ctx context.Context, run *BlobRun, which []int) []StreamBlob {
	out := make([]StreamBlob, len(run.Blobs))
	for k, b := range run.Blobs {
		out[k] = StreamBlob{Index: which[k], ID: b.ID, Loc: b.Loc, Run: run, K: k}
	}
	var rb RunBuf
	var err error
	if s.opts.AroundCache {
		rb, err = run.Fetch(ctx, s.r.be)
	} else {
		var buf *[]byte
		if buf, err = run.Read(ctx, s.r.be); err == nil {
			rb = RunBuf{mem: buf, B: *buf}
		}
	}
	if err == nil {
		defer rb.Free()
		if s.opts.OnRead != nil {
			s.opts.OnRead(run.N)
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
			sb.Data, sb.Pooled, sb.Err = s.r.openSealed(run.Sealed(rb.B, k), s.space, s.t, sb.ID, sb.Loc, nil, mode, true)
		}
		if sb.Err != nil && s.opts.Fallback && ctx.Err() == nil {
			s.otherCopy(ctx, sb)
		}
	}
	return out
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
		d, err := s.r.ReadBlobAt(ctx, s.space, s.t, sb.ID, l, nil)
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
			chunk.PutBuffer(sb.Pooled)
		}
	}
	return ferr
}

// free gives back the buffers of blobs nobody will deliver.
func (s *blobStream) free(blobs []StreamBlob) {
	for _, sb := range blobs {
		if sb.Pooled != nil {
			chunk.PutBuffer(sb.Pooled)
		}
	}
}

// deliverCancelled gives ctx's error to every blob of runs.
func deliverCancelled(err error, runs []*BlobRun, which [][]int, fn func(StreamBlob) error) error {
	for n, run := range runs {
		for k, b := range run.Blobs {
			if ferr := fn(StreamBlob{Index: which[n][k], ID: b.ID, Loc: b.Loc, Err: err, Run: run, K: k}); ferr != nil {
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
func (s *blobStream) ahead(ctx context.Context, runs []*BlobRun, which [][]int, fn func(StreamBlob) error) error {
	ctx2, cancel := context.WithCancel(ctx)
	results := make([]chan []StreamBlob, len(runs))
	for i := range results {
		results[i] = make(chan []StreamBlob, 1)
	}
	weight := func(run *BlobRun) int64 { return min(run.N, s.opts.Ahead) }
	sem := semaphore.NewWeighted(s.opts.Ahead)
	if s.opts.Workers > 0 {
		s.cpu = make(chan struct{}, s.opts.Workers)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, run := range runs {
			if sem.Acquire(ctx2, weight(run)) != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] <- s.readRun(ctx2, run, which[i])
			}()
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
		sem.Release(weight(runs[i]))
		if err := s.deliver(blobs, fn); err != nil {
			return err
		}
	}
	return nil
}

// openMode is where openSealed puts the plaintext.
type openMode int

const (
	openCaller openMode = iota // into the caller's buf if it fits, else fresh
	openFresh                  // a fresh slice of the raw length
	openPooled                 // a buffer of chunk.Buffer
)

// openSealed authenticates, decrypts, decompresses and verifies one sealed
// blob: the only place that does. inPlace says sealed is scratch that may be
// decrypted where it lies (the blobs of a run never overlap), which saves an
// allocation and a copy of every blob. The result is in buf (openCaller, if
// it fits), a fresh slice (openFresh), or the pooled buffer returned
// (openPooled). Every error is a *CorruptError naming the pack and the blob.
func (r *Repository) openSealed(sealed []byte, space string, t BlobType, id chunk.ID, loc index.Location, buf []byte, mode openMode, inPlace bool) ([]byte, *[]byte, error) {
	what := "pack " + ShortHex(loc.Pack)
	var plain []byte
	var scratch *[]byte // pooled plaintext, when not decrypted in place
	var err error
	switch {
	case inPlace:
		plain, err = openInPlace(r.seal, sealed, BlobAD(t, id))
	case mode == openPooled:
		scratch = chunk.Buffer(len(sealed))
		plain, err = r.seal.open((*scratch)[:0], sealed, BlobAD(t, id))
	default:
		plain, err = r.seal.open(nil, sealed, BlobAD(t, id))
	}
	if err != nil {
		if scratch != nil {
			chunk.PutBuffer(scratch)
		}
		return nil, nil, &CorruptError{What: what, Detail: fmt.Sprintf("%s blob %s at offset %d", t, id.Short(), loc.Offset), Err: err}
	}
	if scratch != nil {
		*scratch = plain
	}
	raw, out := plain, scratch
	if loc.Flags&FlagCompressed != 0 {
		var dst []byte
		switch mode {
		case openCaller:
			dst = buf[:0]
		case openFresh:
			dst = make([]byte, 0, loc.RawLength)
		case openPooled:
			out = chunk.Buffer(int(loc.RawLength))
			dst = *out
		}
		if t == TreeBlob {
			// Trees list every chunk of their files, so a directory holding a
			// multi-GiB page file of 32 KiB chunks has a tree larger than any chunk.
			raw, err = chunk.DecompressMax(dst, plain, MaxBlobSize)
		} else {
			raw, err = chunk.Decompress(dst, plain)
		}
		if scratch != nil {
			chunk.PutBuffer(scratch)
		}
		if out != nil {
			*out = raw
		}
		if err != nil {
			if out != nil {
				chunk.PutBuffer(out)
			}
			return nil, nil, &CorruptError{What: what, Detail: fmt.Sprintf("%s blob %s: decompress", t, id.Short()), Err: err}
		}
	} else if inPlace {
		// plain lies in the caller's scratch: copy it out.
		switch mode {
		case openPooled:
			out = chunk.Buffer(len(plain))
			*out = append(*out, plain...)
			raw = *out
		default:
			raw = bytes.Clone(plain)
		}
	}
	fail := func(err error) ([]byte, *[]byte, error) {
		if out != nil {
			chunk.PutBuffer(out)
		}
		return nil, nil, err
	}
	if uint32(len(raw)) != loc.RawLength {
		return fail(Corruptf(what, "%s blob %s: %d bytes, index says %d", t, id.Short(), len(raw), loc.RawLength))
	}
	if r.ChunkKey(space).Sum(raw) != id {
		return fail(Corruptf(what, "%s blob %s: content does not match its ID", t, id.Short()))
	}
	return raw, out, nil
}
