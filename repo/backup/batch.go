package backup

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"

	"memento/repo"
)

// A path backup reads the small files of a directory in batches: the walk
// collects up to batchFiles of them (at most batchArenaSize bytes in all),
// opens them, reads them all with one system call (fileRing) into one
// arena, and hands each file's bytes to the small-file workers, which only
// compress and store them. Read one by one, each file of a cold page cache
// was its own request to the disk and its own wait; read together, the
// files a copy laid side by side on the disk are one request
// (docs/benchmarks.md, "Issue 18, session 15: many small files").
const (
	batchFiles     = 64
	batchArenaSize = 512 << 10
	// maxBatchArenas bounds the arenas of a backup (8 MiB): those being
	// read by the walk's goroutines and those whose files wait for a
	// worker. A walk that finds none free waits for one.
	maxBatchArenas = 16
)

// batchReader reads batches of small files for one backup: it keeps the
// rings (one per walking goroutine at most) and the arenas, and closes the
// rings when the backup is done. A nil batchReader reads nothing: every
// small file is read by its worker.
type batchReader struct {
	mu       sync.Mutex
	rings    []*fileRing // every ring made, for close
	free     []*fileRing
	disabled bool // no io_uring here, or a ring failed: workers read
	arenas   chan *batchArena
	made     int // arenas made
}

// batchArena is the memory of one batch's files; refs counts the jobs
// still holding data in it.
type batchArena struct {
	buf  []byte
	refs atomic.Int32
	home *batchReader
}

// release drops one job's hold on the arena; the last gives it back.
func (b *batchArena) release() {
	if b.refs.Add(-1) == 0 {
		b.home.arenas <- b // capacity maxBatchArenas: never blocks
	}
}

// smallBatch is the small files a walk collected and has not read yet.
type smallBatch struct {
	jobs  []smallJob
	bytes int
}

func newBatchReader() *batchReader {
	return &batchReader{arenas: make(chan *batchArena, maxBatchArenas)}
}

// readLimit is how much of a small file saveSmallFile reads: its listed
// size and one byte, to see that it ends there.
func readLimit(j smallJob) int { return min(int(j.n.Size)+1, int(j.params.Min)) }

// add appends j to batch if j is read in batches; full reports that the
// batch must be read first (add then takes j once it is empty).
func (b *batchReader) add(batch *smallBatch, j smallJob) (taken, full bool) {
	if b == nil || readLimit(j) > slotKept {
		return false, false
	}
	b.mu.Lock()
	off := b.disabled
	b.mu.Unlock()
	if off {
		return false, false
	}
	if len(batch.jobs) == batchFiles || batch.bytes+readLimit(j) > batchArenaSize {
		return false, true
	}
	batch.jobs = append(batch.jobs, j)
	batch.bytes += readLimit(j)
	return true, false
}

// read reads the files of batch and empties it. It returns the jobs to hand
// to the workers: those read whole carry their data; any other (a file
// that grew past its listed size, a read that failed, no ring) is read by
// its worker as before. A file that vanished before its open is dropped
// (openFailed empties its node); any other open failure is the error.
func (b *batchReader) read(ctx context.Context, batch *smallBatch, openFailed func(string, *repo.Node, error) error) ([]smallJob, error) {
	jobs := batch.jobs
	batch.jobs, batch.bytes = jobs[:0], 0
	if len(jobs) == 0 || b == nil {
		return nil, nil
	}
	ring := b.takeRing()
	if ring == nil {
		return jobs, nil
	}
	arena := b.takeArena(ctx)
	if arena == nil {
		b.putRing(ring)
		return jobs, nil // cancelled: handing them over fails too
	}
	fds := make([]int, 0, len(jobs))
	bufs := make([][]byte, 0, len(jobs))
	kept := jobs[:0]
	off := 0
	for _, j := range jobs {
		fd, err := openFD(j.path)
		if err != nil {
			if err = openFailed(j.path, j.n, err); err != nil {
				closeFDs(fds)
				b.arenas <- arena
				b.putRing(ring)
				return nil, err
			}
			continue // vanished: dropped from its tree
		}
		n := readLimit(j)
		fds, bufs = append(fds, fd), append(bufs, arena.buf[off:off+n:off+n])
		kept = append(kept, j)
		off += n
	}
	res := make([]int32, len(fds))
	if err := ring.read(fds, bufs, res); err != nil {
		// Reads the kernel took may still land in the arena: it is
		// never reused, the ring is closed, and no more batches are
		// read in this backup.
		closeFDs(fds)
		b.fail(ring)
		return kept, nil
	}
	var refs int32
	for k := range kept {
		if n := res[k]; n >= 0 && int(n) < len(bufs[k]) && atEOF(fds[k]) {
			kept[k].data, kept[k].arena = bufs[k][:n], arena
			refs++
		}
		syscall.Close(fds[k])
	}
	b.putRing(ring)
	if refs == 0 {
		b.arenas <- arena
	} else {
		arena.refs.Store(refs)
	}
	return kept, nil
}

// atEOF reports whether a read at fd's position finds the end of the file,
// as the last read of a file read whole does: a short read alone is not
// trusted to be the end.
func atEOF(fd int) bool {
	var one [1]byte
	for {
		n, err := syscall.Read(fd, one[:])
		if err == syscall.EINTR {
			continue
		}
		return err == nil && n == 0
	}
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// takeRing returns a free ring, a new one, or nil when this backup reads
// no batches (io_uring unavailable).
func (b *batchReader) takeRing() *fileRing {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.disabled {
		return nil
	}
	if n := len(b.free); n > 0 {
		r := b.free[n-1]
		b.free = b.free[:n-1]
		return r
	}
	r, err := newFileRing(batchFiles)
	if err != nil {
		b.disabled = true
		return nil
	}
	b.rings = append(b.rings, r)
	return r
}

func (b *batchReader) putRing(r *fileRing) {
	b.mu.Lock()
	b.free = append(b.free, r)
	b.mu.Unlock()
}

// fail drops a ring whose read failed and reads no more batches.
func (b *batchReader) fail(r *fileRing) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.disabled = true
	for i, x := range b.rings {
		if x == r {
			b.rings = append(b.rings[:i], b.rings[i+1:]...)
			break
		}
	}
	r.close()
}

// takeArena returns a free arena, a new one while fewer than
// maxBatchArenas exist, or waits for one; nil once ctx is done.
func (b *batchReader) takeArena(ctx context.Context) *batchArena {
	select {
	case a := <-b.arenas:
		return a
	default:
	}
	b.mu.Lock()
	if b.made < maxBatchArenas {
		b.made++
		b.mu.Unlock()
		return &batchArena{buf: make([]byte, batchArenaSize), home: b}
	}
	b.mu.Unlock()
	select {
	case a := <-b.arenas:
		return a
	case <-ctx.Done():
		return nil
	}
}

// close closes the rings; the backup reads no more files.
func (b *batchReader) close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.rings {
		r.close()
	}
	b.rings, b.free, b.disabled = nil, nil, true
}
