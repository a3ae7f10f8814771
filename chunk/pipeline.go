package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/restic/chunker"
	"golang.org/x/sync/semaphore"
)

// Chunk is one chunk handed to the store callback of Split.
type Chunk struct {
	ID ID
	// Raw is the plaintext. It is a pooled buffer, valid only until store
	// returns: store must copy what it keeps.
	Raw []byte
	// Stored is what to write to the repository: the compressed form (see
	// Decompress) when Compressed, else Raw itself. Also valid only during
	// store.
	Stored     []byte
	Compressed bool
	// Index is the chunk's position in its stream (0-based) and Offset the
	// stream offset of its first byte, for progress and error messages.
	Index  int
	Offset int64

	// later is how a chunk of a Split is compressed (Compress); its p is
	// nil for a Chunk not made by a Split.
	later laterForm
}

// laterForm is what Compress needs to make a lazy chunk's stored form: the
// pipeline's buffers and the Split's strategy; out is the buffer it took,
// which the worker puts back after store.
type laterForm struct {
	p   *Pipeline
	s   *split
	out *[]byte
}

// Lazy reports whether the chunk was handed to store uncompressed: Stored
// is nil until Compress.
func (c *Chunk) Lazy() bool { return c.later.p != nil && c.later.out == nil }

// Compress makes the stored form of a chunk handed to store uncompressed
// (SplitFileLazy), as the worker would have made it before store; for any
// other chunk, or a second time, it does nothing. Like Stored, the result
// is valid only during store.
func (c *Chunk) Compress() {
	l := &c.later
	if l.p == nil || l.out != nil {
		return
	}
	l.out = l.p.bufs.get(len(c.Raw))
	stored, compressed := compressKind((*l.out)[:0], c.Raw, l.s.level, l.s.kind, l.s.forms, l.p.bufs)
	if compressed {
		*l.out = stored
	}
	c.Stored, c.Compressed = stored, compressed
}

// Pipeline is the shared pool of hashing and compressing workers, one per
// process. Every Split feeds the same bounded queue, so files backed up in
// parallel share the cores instead of each starting its own workers, and the
// memory in flight is bounded by the queue, not by the number of files.
type Pipeline struct {
	level   Level
	huff    atomic.Bool // UseHuffPlanes
	walrec  atomic.Bool // UseWALRecords
	workers int
	jobs    chan job
	wg      sync.WaitGroup

	// budget bounds the bytes of chunk buffers that all Splits hold at once
	// (being cut, queued or with a worker): every Split reads on its own
	// goroutine, so without it each holds a full buffer while it waits for
	// the queue, and a backup of 3 spaces reading 4 files each held twelve
	// 8 MiB cold-segment buffers beside the workers' (issue 18: 168 MB of
	// a 10 GiB backup's 250 MB live heap). See splitBudget.
	budget *semaphore.Weighted
	// bufs keeps the big buffers (chunks, compression output and
	// temporaries) between uses, at most one max-size chunk's worth per
	// worker: see bufList. More (the split budget plus two per worker, 80
	// MiB) kept the heap at the 200 MiB soft limit and made a first backup
	// collect 535 times instead of about 50.
	bufs   *bufList
	splits atomic.Int32 // Splits running; the last one out releases bufs

	// mu is held shared by every running Split and exclusively by Close, so
	// Close waits for Splits to finish instead of closing jobs under them.
	mu     sync.RWMutex
	closed bool
}

type job struct {
	s      *split
	index  int
	offset int64
	buf    *[]byte
	weight int64 // of budget, released with buf
}

// splitBudget is the bytes of chunk buffers a pipeline of workers lets all
// its Splits hold at once: one buffer being cut by a reader, one queued and
// one with each worker, plus one more reader ahead, at the largest chunk
// size; at least 4 and at most 16 of those (48 MiB with 2 workers, 128 MiB
// from 7 up). Buffers of small chunks (WAL 1 MiB, warm pages 32 KiB) weigh
// their size class, so many more of them fit. Compression's own buffers
// (one or two a worker) come on top, bounded by the workers.
func splitBudget(workers int) int64 {
	n := min(max(2*workers+2, 4), 16)
	return int64(n) * MaxChunkSize
}

// bufWeight is what a buffer for chunks of at most n bytes weighs against
// the budget: its pooled capacity, never above the whole budget (Acquire of
// more than the budget would wait forever).
func bufWeight(n int, budget int64) int64 {
	w := int64(1) << sizeClass(n)
	if w < int64(n) {
		w = int64(n)
	}
	return min(w, budget)
}

// NewPipeline starts workers goroutines (GOMAXPROCS when workers < 1) that
// hash and compress at level. Close stops them.
func NewPipeline(workers int, level Level) *Pipeline {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	if _, err := level.resolve(); err != nil {
		level = LevelDefault
	}
	p := &Pipeline{
		level:   level,
		workers: workers,
		// One queued chunk per worker keeps them fed while the reader cuts
		// the next one; more would only hold more memory.
		jobs:   make(chan job, workers),
		budget: semaphore.NewWeighted(splitBudget(workers)),
		bufs:   newBufList(int64(workers) * MaxChunkSize),
	}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// UseHuffPlanes says whether Splits started from now on may store float
// chunks in form 0x03 (formatShuffle4Huff: planes Huffman-coded, cheaper and
// smaller than 0x02's zstd frames), which binaries before it cannot decode.
// Only a repository whose format promises that its readers know the form
// (repo.Config.HuffPlanes: format 3 and later) may get it; a pipeline stores
// 0x02 until told otherwise, so a caller that forgets costs speed, never
// compatibility.
func (p *Pipeline) UseHuffPlanes(on bool) { p.huff.Store(on) }

// UseWALRecords says whether Splits started from now on may store WAL
// chunks and warm page file chunks in form 0x04 (formatWALRecords: each
// record's embedding shuffled at its own phase), which binaries before it
// cannot decode. Only a repository
// whose format promises that its readers know the form
// (repo.Config.WALRecords: format 4 and later) may get it; off by default,
// as UseHuffPlanes.
func (p *Pipeline) UseWALRecords(on bool) { p.walrec.Store(on) }

// forms returns the stored forms Splits started now may write.
func (p *Pipeline) forms() forms {
	var f forms
	if p.huff.Load() {
		f |= formsHuff
	}
	if p.walrec.Load() {
		f |= formsWALRecords
	}
	return f
}

// Workers returns the number of worker goroutines.
func (p *Pipeline) Workers() int { return p.workers }

// Close waits for running Splits to finish, then stops the workers. Split
// after Close returns ErrClosed. Close is idempotent.
func (p *Pipeline) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	close(p.jobs)
	p.wg.Wait()
	p.bufs.release()
}

// CompressFile appends to dst[:0] the stored form of src as the pipeline
// compresses a chunk of the file at relPath (its level, the file's kind and
// UseHuffPlanes, UseWALRecords): a backup compresses the pages of a delta
// with it.
func (p *Pipeline) CompressFile(dst, src []byte, relPath string) (stored []byte, compressed bool) {
	level, kind := p.strategy(relPath)
	return compressKind(dst, src, level, kind, p.forms(), nil)
}

// strategy is how the chunks of the file at relPath are compressed: at
// FileLevel's level with the strategy of the file's kind; an empty relPath
// (Split) at the pipeline's level with the default strategy.
func (p *Pipeline) strategy(relPath string) (Level, fileKind) {
	if relPath == "" {
		return p.level, kindDefault
	}
	return FileLevel(relPath, p.level), kindOf(relPath)
}

// split is the state of one running Split, shared with the workers.
type split struct {
	ctx    context.Context
	cancel context.CancelFunc
	key    Key
	known  func(ID) bool
	lazy   func(index int, id ID) bool // SplitFileLazy; nil: compress every chunk
	store  func(*Chunk) error
	level  Level    // the compression level of this Split's chunks
	kind   fileKind // the kind of file, for compressKind
	forms  forms    // Pipeline.forms when the Split started

	pending sync.WaitGroup

	mu  sync.Mutex
	ids []ID
	err error
	// zeroLen and zeroID: the ID of the last chunk of zeros of zeroLen
	// bytes this Split hashed (0: none), see sum.
	zeroLen int
	zeroID  ID
}

// zeroIDMin is the shortest chunk whose ID sum takes from the Split's last
// chunk of zeros of its length.
const zeroIDMin = 64 << 10

// sum is key.Sum(raw), but a chunk of zeros as long as the last one this
// Split hashed takes its ID: the holes of a sparse image are thousands of
// chunks of zeros of the chunker's minimum size (a 4 GiB image with 290
// MiB of data: some 7,000), whose keyed BLAKE3 was a quarter of its first
// backup's BLAKE3 time. Telling zeros costs a comparison that stops at the
// first byte that is not zero.
func (s *split) sum(raw []byte) ID {
	n := len(raw)
	if n < zeroIDMin || raw[0] != 0 || raw[n-1] != 0 || !IsZero(raw) {
		return s.key.Sum(raw)
	}
	s.mu.Lock()
	if s.zeroLen == n {
		id := s.zeroID
		s.mu.Unlock()
		return id
	}
	s.mu.Unlock()
	id := s.key.Sum(raw)
	s.mu.Lock()
	s.zeroLen, s.zeroID = n, id
	s.mu.Unlock()
	return id
}

var zeroBlock [64 << 10]byte

// IsZero reports whether b holds only zero bytes (64 KiB compared at a
// time: a few bytes of work for data, whose first bytes differ).
func IsZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:k], zeroBlock[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}

// fail records the first error and stops the Split.
func (s *split) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.cancel()
}

// Split streams r through the content-defined chunker (polynomial pol,
// params) and hands every chunk to the workers, which hash it with key, skip
// it when known(id) reports that the repository already has it, and
// otherwise compress it and call store. store is called concurrently from
// the workers, in no particular order, and only for chunks known did not
// claim (known may be nil: nothing is known); it must copy what it keeps of
// Raw and Stored. known and store may also run concurrently with each other
// and must be safe for that. Because concurrent Splits may both find a chunk
// unknown, store must tolerate an ID it has already stored.
//
// The calling goroutine reads and chunks sequentially and computes the plain
// BLAKE3-256 of the whole stream. Split returns the chunk IDs in stream order,
// that digest and the stream length. The first error from r or store, or the
// cancellation of ctx, stops the Split; it is returned wrapped (errors.Is
// finds the cause), after every worker has finished with this Split's chunks,
// so store is never called after Split returns.
func (p *Pipeline) Split(ctx context.Context, r io.Reader, pol chunker.Pol, params Params, key Key,
	known func(ID) bool, store func(*Chunk) error) (ids []ID, sum [32]byte, n int64, err error) {
	return p.SplitFile(ctx, r, "", pol, params, key, known, store)
}

// SplitFile is Split for a file: its chunks are compressed at the level
// FileLevel gives for relPath (slash-separated, relative to the space or
// backup root) and the pipeline's level. An empty relPath is Split.
func (p *Pipeline) SplitFile(ctx context.Context, r io.Reader, relPath string, pol chunker.Pol, params Params, key Key,
	known func(ID) bool, store func(*Chunk) error) (ids []ID, sum [32]byte, n int64, err error) {
	return p.SplitFileLazy(ctx, r, relPath, pol, params, key, known, nil, store)
}

// SplitFileLazy is SplitFile that hands store, uncompressed, every chunk
// for which lazy(index, id) reports true: its Stored is nil (Lazy) until
// store calls Compress, so a store that may keep the chunk in another form
// (a backup's delta blobs) compresses it only when it keeps it whole. A nil
// lazy is SplitFile. Like known and store, lazy is called concurrently from
// the pipeline's workers.
func (p *Pipeline) SplitFileLazy(ctx context.Context, r io.Reader, relPath string, pol chunker.Pol, params Params, key Key,
	known func(ID) bool, lazy func(index int, id ID) bool, store func(*Chunk) error) (ids []ID, sum [32]byte, n int64, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, sum, 0, ErrClosed
	}
	p.splits.Add(1)
	defer func() {
		if p.splits.Add(-1) == 0 {
			p.bufs.release() // idle: keep no memory (every buffer is back)
		}
	}()
	ch, err := NewChunker(r, pol, params)
	if err != nil {
		return nil, sum, 0, fmt.Errorf("split: %w", err)
	}
	defer ch.Release()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &split{ctx: sctx, cancel: cancel, key: key, known: known, lazy: lazy, store: store, forms: p.forms()}
	s.level, s.kind = p.strategy(relPath)
	var h Hasher
	defer h.Reset() // the state back to its pool when the split fails

	bufSize := int(params.Max)
	weight := bufWeight(bufSize, splitBudget(p.workers))
	for index := 0; ; index++ {
		if sctx.Err() != nil || p.budget.Acquire(sctx, weight) != nil {
			break // the Split failed or ctx is done: the error is found below
		}
		buf := p.bufs.get(bufSize)
		data, rerr := ch.Next((*buf)[:0])
		if rerr != nil {
			p.bufs.put(buf)
			p.budget.Release(weight)
			if !errors.Is(rerr, io.EOF) {
				s.fail(fmt.Errorf("split: %w", rerr))
			}
			break
		}
		*buf = data
		_, _ = h.Write(data)
		j := job{s: s, index: index, offset: n, buf: buf, weight: weight}
		n += int64(len(data))
		s.mu.Lock()
		s.ids = append(s.ids, ID{})
		s.mu.Unlock()
		s.pending.Add(1)
		select {
		case p.jobs <- j:
		case <-sctx.Done():
			s.pending.Done()
			p.bufs.put(buf)
			p.budget.Release(weight)
		}
	}
	s.pending.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, sum, n, s.err
	}
	if err := ctx.Err(); err != nil {
		return nil, sum, n, fmt.Errorf("split at offset %d: %w", n, err)
	}
	return s.ids, h.Sum256(), n, nil
}

func (p *Pipeline) work() {
	defer p.wg.Done()
	for j := range p.jobs {
		p.process(j)
	}
}

func (p *Pipeline) process(j job) {
	s := j.s
	defer s.pending.Done()
	defer p.budget.Release(j.weight)
	defer p.bufs.put(j.buf)
	if s.ctx.Err() != nil {
		return
	}
	raw := *j.buf
	id := s.sum(raw)
	s.mu.Lock()
	s.ids[j.index] = id
	s.mu.Unlock()
	if s.known != nil && s.known(id) {
		return
	}
	c := &Chunk{ID: id, Raw: raw, Index: j.index, Offset: j.offset, later: laterForm{p: p, s: s}}
	if s.lazy == nil || !s.lazy(j.index, id) {
		c.Compress()
	}
	err := s.store(c)
	if out := c.later.out; out != nil {
		p.bufs.put(out)
	}
	if err != nil {
		s.fail(fmt.Errorf("store chunk %d (%s) at offset %d: %w", j.index, id.Short(), j.offset, err))
	}
}
