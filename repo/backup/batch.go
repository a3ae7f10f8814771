package backup

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"memento/repo"
)

// A path backup reads the small files of a directory in batches: the walk
// collects up to batchFiles of them (at most batchArenaSize bytes in all),
// opens them, reads them all with one io_uring submission (fileRing) into
// one arena (a second confirms each file's end and closes them all), and
// hands each file's bytes to the small-file workers, which only compress
// and store them. Read one by one, each file of a cold page cache
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
	// minBatchFiles is the fewest files a batch may hold at once for
	// batches to be read at all (batchFDs).
	minBatchFiles = 4
)

// batchFDs is how many files one batch may hold open at once in a process
// whose descriptor limit is limit with open descriptors open already: the
// walk reads up to maxConcurrentDirs+1 batches at once, and besides them
// the backup needs descriptors for its small-file workers, its larger
// files, the directories it lists, the rings and the repository
// (fdReserve). At the limits of a container (a hard limit of 256 or 512,
// which Go raises the soft limit to) that leaves a few files per batch, or
// none (then every file is read by its worker, as without batches): 64
// files in each of 9 batches made backups that succeed without batches
// fail with "too many open files" (TestBackupManySmallFilesLowFDLimit).
func batchFDs(limit, open uint64) int {
	// A worker's file and the directory it is opened in (dirHandle).
	const fdReserve = 2*(maxConcurrentSmallFiles+maxConcurrentFiles) + 2*(maxConcurrentDirs+1) + 64
	if limit < open+fdReserve {
		return 0
	}
	n := int(min((limit-open-fdReserve)/(maxConcurrentDirs+1), batchFiles))
	if n < minBatchFiles {
		return 0
	}
	return n
}

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
	// files is the most files a batch holds (batchFDs).
	files int
	// refused holds the devices (file systems) whose files a whole batch
	// could not read through io_uring (EINVAL): their files are read by
	// their workers; batches go on elsewhere.
	refused map[uint64]bool
	// held counts the descriptors batches hold open; waiting, the
	// workers that ran out of descriptors while batches held some
	// (open): while any waits, batches open no more files.
	held, waiting int
	closed        sync.Cond // broadcast when held drops to 0
	// unholds counts the holds ended (unhold): an open that failed tries
	// again if one ended since it began, even if none is held now.
	unholds atomic.Uint64
	// hook, set only by tests, is given each ring as it is made.
	hook func(*fileRing)
	// openHook, set only by tests, runs when an open found no descriptor,
	// before it looks at what the batches hold.
	openHook func()
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
	b := &batchReader{arenas: make(chan *batchArena, maxBatchArenas), files: batchFiles}
	b.closed.L = &b.mu
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		open := uint64(64) // if /proc cannot tell
		if names, err := readDirNames("/proc/self/fd"); err == nil {
			open = uint64(len(names))
		}
		b.files = batchFDs(lim.Cur, open)
		b.disabled = b.files == 0
	}
	return b
}

// open opens j's file for a batch: relative to its directory if the walk
// gave it (the directory is open while the walk reads its batches).
func (j smallJob) open() (int, error) {
	if j.name == "" {
		return openFD(j.path)
	}
	return entry{dir: j.dir, name: j.name, path: j.path}.openFD()
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
	off := b.disabled || b.refused[j.dev]
	b.mu.Unlock()
	if off {
		return false, false
	}
	if len(batch.jobs) == b.files || batch.bytes+readLimit(j) > batchArenaSize {
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
	// The arena first: its wait (for workers to save the files of
	// earlier batches) must hold no descriptor, for a worker may wait
	// for those (open).
	arena := b.takeArena(ctx)
	if arena == nil {
		return jobs, nil // cancelled: handing them over fails too
	}
	if !b.hold(len(jobs)) { // a worker waits for descriptors: the workers read these
		b.arenas <- arena
		return jobs, nil
	}
	defer b.unhold(len(jobs))
	ring := b.takeRing()
	if ring == nil {
		b.arenas <- arena
		return jobs, nil
	}
	ops := make([]ringOp, 0, 2*len(jobs))
	kept := jobs[:0]
	off := 0
	var rest []smallJob // not opened: out of descriptors
	for i, j := range jobs {
		fd, err := j.open()
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			// Out of descriptors (the batch holds up to batchFiles
			// open): the rest go to their workers, which open one
			// at a time, as without batches.
			rest = append([]smallJob(nil), jobs[i:]...)
			break
		}
		if err != nil {
			if err = openFailed(j.path, j.n, err); err != nil {
				for _, op := range ops {
					syscall.Close(op.fd)
				}
				b.arenas <- arena
				b.putRing(ring)
				return nil, err
			}
			continue // vanished: dropped from its tree
		}
		n := readLimit(j)
		ops = append(ops, ringOp{fd: fd, buf: arena.buf[off : off+n : off+n]})
		kept = append(kept, j)
		off += n
	}
	reads := ops
	if len(reads) == 0 { // every file vanished (or no descriptor was left)
		b.arenas <- arena
		b.putRing(ring)
		return append(kept, rest...), nil
	}
	if err := ring.run(reads); err != nil {
		// Reads the kernel took are waited for (fail: drain), the
		// arena is never reused, the ring is closed, and no more
		// batches are read in this backup. Then the files are closed:
		// reads do not close them.
		b.fail(ring, arena)
		for _, op := range reads {
			syscall.Close(op.fd)
		}
		return append(kept, rest...), nil
	}
	b.refuse(kept, reads)
	// Then, in one more submission, each file read short of its limit is
	// read once more at its position, where a read must find its end (a
	// short read alone is not trusted to be the end), and every file is
	// closed after it.
	ends := make([]ringOp, 0, 2*len(reads))
	for k, op := range reads {
		if op.res >= 0 && int(op.res) < len(op.buf) {
			ends = append(ends, ringOp{fd: op.fd, buf: ring.scratch[k : k+1], link: true})
		}
		ends = append(ends, ringOp{fd: op.fd, close: true})
	}
	if err := ring.run(ends); err != nil {
		// Once the ops the kernel took are done (fail: drain), each
		// file the ring did not close is closed here, once: a
		// descriptor the ring closed may already be another file's.
		// If drain could not wait, a close the kernel took may still
		// run: those files are left open.
		b.fail(ring, nil)
		for _, op := range ends {
			if op.close && notClosed(op.res) {
				syscall.Close(op.fd)
			}
		}
		return append(kept, rest...), nil
	}
	b.putRing(ring)
	var refs int32
	e := 0
	for k, op := range reads {
		eof := false
		if !ends[e].close {
			eof = ends[e].res == 0
			e++
		}
		if notClosed(ends[e].res) {
			syscall.Close(op.fd) // the ring did not close it
		}
		e++
		if eof {
			kept[k].data, kept[k].arena = op.buf[:op.res], arena
			refs++
		}
	}
	if refs == 0 {
		b.arenas <- arena
	} else {
		arena.refs.Store(refs)
	}
	return append(kept, rest...), nil
}

// notClosed reports whether a close op with result res left its
// descriptor open: it never ran (cancelled, or never submitted) or the
// kernel does not know the op. Any other result, an error too, means
// the descriptor is gone, as after close(2).
func notClosed(res int32) bool {
	return res == -int32(syscall.EINVAL) || res == -int32(syscall.ECANCELED) || res == -int32(syscall.EOPNOTSUPP)
}

// ringPending is the result of an op a failed submission gave the kernel
// whose completion was not seen (fileRing.drain): it may still run.
const ringPending = -1 << 31

// ringOp is one operation of a batch (fileRing.run): a read of len(buf)
// bytes at fd's position (at offset off instead when atOff: walread.go),
// or (close) fd's close. link makes the next op start after this one ends,
// whatever its result. res is the result: the count read, 0 for a close,
// or minus the error number.
type ringOp struct {
	fd          int
	buf         []byte
	off         int64
	atOff       bool
	close, link bool
	res         int32
}

// takeRing returns a free ring, a new one, or nil: when this backup reads
// no batches (io_uring unavailable), or for now (no descriptor left for a
// new ring).
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
	r, err := newFileRing(2 * batchFiles)
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return nil // out of descriptors for now: this batch's workers read it
	}
	if err != nil {
		b.disabled = true
		return nil
	}
	if b.hook != nil {
		b.hook(r)
	}
	b.rings = append(b.rings, r)
	return r
}

// refuse notes the devices whose files refused every read of a batch
// with EINVAL: a file system (a FUSE or network one, say) that does not
// take io_uring reads, whose files its workers read from now on. A kernel
// without io_uring reads is found when the first ring is made
// (newFileRing), not here; a read refused alone is its file's, read by
// its worker as any read that failed.
func (b *batchReader) refuse(jobs []smallJob, reads []ringOp) {
	for _, op := range reads {
		if op.res != -int32(syscall.EINVAL) {
			return
		}
	}
	b.mu.Lock()
	if b.refused == nil {
		b.refused = map[uint64]bool{}
	}
	for _, j := range jobs {
		b.refused[j.dev] = true
	}
	b.mu.Unlock()
}

// hold counts n descriptors a batch is about to open; false (nothing
// counted) while a worker waits for descriptors to be closed.
func (b *batchReader) hold(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiting > 0 {
		return false
	}
	b.held += n
	return true
}

// unhold ends a batch's hold: its files are closed (or left to the
// kernel, which no wait would change).
func (b *batchReader) unhold(n int) {
	b.mu.Lock()
	b.held -= n
	b.unholds.Add(1)
	if b.held == 0 {
		b.closed.Broadcast()
	}
	b.mu.Unlock()
}

// open opens a file to back up (openFD) for a worker, or with flags
// (openFlags) a directory to list. Out of descriptors while batches hold
// some, it waits until they are closed, no batch opening more meanwhile,
// and tries again: what could be opened once the batches' files are
// closed is never reported as "too many open files".
func (b *batchReader) open(path string) (int, error) {
	return b.openFlags(path, fileFlags)
}

func (b *batchReader) openFlags(path string, flags int) (int, error) {
	return b.openAt(unix.AT_FDCWD, path, path, flags)
}

// openAt is openFlags of name in the directory open as dir (a worker's
// file in the directory the walk listed: fileHandle); errors name path.
func (b *batchReader) openAt(dir int, name, path string, flags int) (int, error) {
	for {
		var seen uint64
		if b != nil {
			seen = b.unholds.Load()
		}
		fd, err := openAt(dir, name, path, flags)
		if b == nil || !(errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) {
			return fd, err
		}
		if b.openHook != nil {
			b.openHook()
		}
		b.mu.Lock()
		if b.held == 0 {
			again := b.unholds.Load() != seen
			b.mu.Unlock()
			if again {
				continue // a batch closed its files since this open failed
			}
			return fd, err // no batch held any: as without batches
		}
		b.waiting++
		for b.held > 0 {
			b.closed.Wait()
		}
		b.waiting--
		b.mu.Unlock()
	}
}

func (b *batchReader) putRing(r *fileRing) {
	b.mu.Lock()
	b.free = append(b.free, r)
	b.mu.Unlock()
}

// fail drops a ring whose submission failed and reads no more batches.
// arena, if not nil, and the ring's scratch may still receive reads the
// kernel took: fail waits for those (fileRing.drain); the arena is never
// reused. If even that wait fails, the memory the kernel may still write
// is pinned for the life of the process (a parked goroutine holds it: at
// most one arena, 512 KiB, per ring in flight when the first failed, so
// maxConcurrentDirs of them, per backup whose io_uring broke twice), so a
// late read never lands in memory the Go heap has given to something else.
// The wait runs without b.mu: the other walkers go on (reading with
// read(2)) while it waits for the disk.
func (b *batchReader) fail(r *fileRing, arena *batchArena) {
	b.mu.Lock()
	b.disabled = true
	for i, x := range b.rings {
		if x == r {
			b.rings = append(b.rings[:i], b.rings[i+1:]...)
			break
		}
	}
	b.mu.Unlock() // r is out of b.rings: close does not touch it
	if !r.drain() {
		never := make(chan struct{}) // never closed: the goroutine parks for good
		go func() {
			<-never
			runtime.KeepAlive(arena)
			runtime.KeepAlive(r.scratch)
		}()
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
