package repo

import (
	"sync"

	"memento/repo/directio"
	"memento/repo/hugepage"
	"memento/repo/slabmem"
)

// packPool owns a repository's pack buffers and the uploaders that write
// them, for all its packers together (every space of `backup --all`).
//
// Memory: each packer fills at most one pack, and the uploaders write at
// most uploadLimit packs; the buffers of all of them together are bounded
// by budget = packers + uploadLimit. A packer whose pack is full hands it
// over (upload, which never waits) and takes the next buffer (get); get
// waits while every buffer of the budget is out (and, for a packer that is
// not urgent, while an urgent one waits: Packer.Urgent). Written buffers go
// back to a free list and are reused as they are, neither zeroed nor
// faulted in again. A new buffer starts small and grows with its pack
// (Packer.grow, packBufStart): a backup that stores little touches little,
// and a first backup grows its budget's buffers once, to the full size.
//
// Deadlock-free by construction: a packer waiting in get holds no buffer
// (its full pack went to the uploaders first), so while it waits at most
// packers-1 buffers are filling and at least uploadLimit+1 are queued or
// being written. The uploaders depend on nothing but the backend (and the
// sealing of blobs already reserved, which waits for nothing), so an
// upload ends and get returns, whatever the pipeline's workers, shared
// by the spaces, are blocked on. An urgent packer's wait ends at the first
// buffer given back, and the others' wait behind it ends when it takes it.
//
// The heap's soft limit (cmd/memento: 200 MiB) does not squeeze the pack
// buffers, which the budget bounds: while packers run, the limit is raised
// by the bytes of the buffers the pool holds, at most packLimitRaise
// (shiftLimit). Under the bare limit a first backup of 16 spaces collected
// 33 times against 12 and faulted in twice the pages (docs/benchmarks.md,
// session 26).
type packPool struct {
	// perBackend is the uploaders' limit when the backend names one
	// (PackWriters), else 0: packUploaders per packer.
	perBackend int

	mu         sync.Mutex
	cond       sync.Cond // signalled when a buffer is given back
	packers    int       // packers started and not ended
	out        int       // buffers filling, queued or being written
	free       [][]byte  // written buffers, for the next packs
	queue      []*openPack
	urgent     int    // packs of urgent packers at the queue's front
	waiting    [2]int // packers waiting in get: others, urgent ones
	uploaders  int    // goroutines draining queue
	peak       int    // most buffers held at once (out + free), for tests
	allocs     int    // buffers allocated (new and grown), for tests
	allocBytes int64  // their capacities, for tests
	held       int64  // capacities of the buffers allocated and not dropped
	raised     int64  // what shiftLimit raised the soft memory limit by
}

// packLimitRaise is the most the pack buffers raise the soft memory limit
// by: three full buffers, one packer's budget with two uploads. More
// buffers than that (backup --all's four packers) stay under the limit.
// Peak RSS at 10 GiB stays below 300 MiB with it (docs/benchmarks.md,
// session 26).
const packLimitRaise = 48 << 20

// packUploaders is how many packs per packer are written at once on a
// backend that does not say how many writes keep it busy (PackWriters): an
// object store, whose per-request latency two writes per space hide.
const packUploaders = 2

// PackWriters is implemented by backends that say how many pack writes at
// once keep them busy, whatever the number of packers: a local directory,
// bound by its device.
type PackWriters interface {
	PackWriters() int
}

// packBufsIdle is how many buffers the pool keeps while no packer runs: one,
// for the next packer of a long-lived process (the WAL archiver's runs)
// without holding a first backup's worth of memory between backups.
const packBufsIdle = 1

func newPackPool(be Backend) *packPool {
	f := &packPool{}
	f.cond.L = &f.mu
	if pw, ok := be.(PackWriters); ok {
		f.perBackend = max(1, pw.PackWriters())
	}
	return f
}

// uploadLimit is how many packs are written at once. Called with mu held.
func (f *packPool) uploadLimit() int {
	if f.perBackend > 0 {
		return f.perBackend
	}
	return max(1, packUploaders*f.packers)
}

// budget is how many buffers the pool may hold, out and free. Called with
// mu held.
func (f *packPool) budget() int {
	if f.packers == 0 {
		return packBufsIdle
	}
	return f.packers + f.uploadLimit()
}

func (f *packPool) startPacker() {
	f.mu.Lock()
	f.packers++
	f.mu.Unlock()
	f.cond.Broadcast() // the budget grew
}

// endPacker is called once a packer's last pack is written (or dropped):
// its share of the budget goes, and free buffers beyond the smaller
// budget are left to the garbage collector.
func (f *packPool) endPacker() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.packers--
	f.trim()
	f.shiftLimit()
}

// shiftLimit moves the soft memory limit by what the held buffers now ask:
// min(held, packLimitRaise) while packers run, nothing once none runs (a
// repository dropped between backups leaves no raise behind). Called with
// mu held, after every change of held or packers.
func (f *packPool) shiftLimit() {
	want := int64(0)
	if f.packers > 0 {
		want = min(f.held, packLimitRaise)
	}
	if want != f.raised {
		f.raised += slabmem.ShiftLimit(want - f.raised)
	}
}

// drop lets a buffer the pool allocated go to the garbage collector: its
// range back to small pages first (hugepage.Unadvise: the advice leaves the
// bytes alone, so a late read is unharmed), and out of held. Called with mu
// held.
func (f *packPool) drop(b []byte) {
	hugepage.Unadvise(b[:cap(b)])
	f.held -= int64(cap(b))
}

// trim drops free buffers beyond the budget. Called with mu held.
func (f *packPool) trim() {
	for len(f.free) > 0 && f.out+len(f.free) > f.budget() {
		n := len(f.free) - 1
		// Hand the range back to small pages before the heap reuses it.
		f.drop(f.free[n])
		f.free[n] = nil
		f.free = f.free[:n]
	}
}

// get returns an empty buffer of capacity at least want for a packer's next
// pack (its first blob; the pack grows it as it fills, Packer.grow), a free one when there is one, else a new one while the budget
// allows, else it waits for an upload to give one back. The caller holds
// no other buffer. An urgent packer's get (Packer.Urgent) takes the first
// buffer given back: the others wait while one waits.
func (f *packPool) get(want int, urgent bool) []byte {
	f.mu.Lock()
	if urgent {
		f.waiting[1]++
		for len(f.free) == 0 && f.out >= f.budget() {
			f.cond.Wait()
		}
		f.waiting[1]--
		if f.waiting[0] > 0 {
			defer f.cond.Broadcast() // the others may take what is left
		}
	} else {
		f.waiting[0]++
		// An urgent packer waiting goes first.
		for len(f.free) == 0 && f.out >= f.budget() || f.waiting[1] > 0 {
			f.cond.Wait()
		}
		f.waiting[0]--
	}
	var b []byte
	if n := len(f.free); n > 0 {
		b, f.free[n-1] = f.free[n-1], nil
		f.free = f.free[:n-1]
	}
	f.out++
	f.peak = max(f.peak, f.out+len(f.free))
	if cap(b) >= want {
		f.mu.Unlock()
		return b[:0]
	}
	if b != nil { // a free buffer too small for the first blob
		f.drop(b)
	}
	f.mu.Unlock()
	return f.alloc(want)
}

// alloc returns a new empty pack buffer of capacity n: get's, or a pack's
// buffer that grows (Packer.grow), which replaces the one it had.
func (f *packPool) alloc(n int) []byte {
	// Aligned, so that the local backend writes the finished pack with
	// O_DIRECT straight from this buffer. Backed by transparent huge pages:
	// filled the first time, a 16 MiB buffer is otherwise 4,096 page faults,
	// each ~10 us of system time and more of wall time on a virtual machine.
	// A pack buffer lives until trim drops it, which takes the advice back
	// (hugepage.Unadvise) before the Go heap reuses the range.
	b := directio.Alloc(n)
	hugepage.Advise(b)
	f.mu.Lock()
	f.allocs++
	f.allocBytes += int64(n)
	f.held += int64(cap(b))
	f.shiftLimit()
	f.mu.Unlock()
	return b[:0]
}

// lose is a buffer that leaves the pool without going back to it: the
// garbage collector takes it once nothing refers to it. It is a failed
// write's buffer (the backend may still read it), or one swapped for a
// larger copy: alloc's (Packer.grow) or one the pool did not allocate
// (adopt).
func (f *packPool) lose(b []byte) {
	f.mu.Lock()
	f.drop(b)
	f.shiftLimit()
	f.mu.Unlock()
}

// adopt counts a buffer the pool did not allocate (a pack whose header
// outgrew its buffer's reserve, copied by append) as held: put keeps it
// for the next packs like its own.
func (f *packPool) adopt(b []byte) {
	f.mu.Lock()
	f.held += int64(cap(b))
	f.shiftLimit()
	f.mu.Unlock()
}

// put gives a buffer back: b for the next pack, or nil when it must not be
// reused (its write failed and the backend may still read it).
func (f *packPool) put(b []byte) {
	f.mu.Lock()
	f.out--
	if b != nil {
		f.free = append(f.free, b[:0])
		f.trim()
		f.shiftLimit()
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

// upload queues a closed pack for the uploaders, starting one if fewer than
// uploadLimit run. It never waits. The packs of urgent packers
// (Packer.Urgent) are written before every other queued pack, and otherwise
// packs are written in the order they were queued, whatever their packer.
func (f *packPool) upload(pp *openPack) {
	pp.p.pending.Add(1)
	f.mu.Lock()
	if pp.p.urgent {
		f.queue = append(f.queue, nil)
		copy(f.queue[f.urgent+1:], f.queue[f.urgent:])
		f.queue[f.urgent] = pp
		f.urgent++
	} else {
		f.queue = append(f.queue, pp)
	}
	start := f.uploaders < f.uploadLimit()
	if start {
		f.uploaders++
	}
	f.mu.Unlock()
	if start {
		go f.uploader()
	}
}

// uploader writes queued packs until the queue is empty: uploaders live as
// long as there is work, so a repository keeps no goroutine between backups.
func (f *packPool) uploader() {
	for {
		f.mu.Lock()
		if len(f.queue) == 0 || f.uploaders > f.uploadLimit() {
			f.uploaders--
			f.mu.Unlock()
			return
		}
		pp := f.queue[0]
		f.queue[0] = nil
		f.queue = f.queue[1:]
		if f.urgent > 0 {
			f.urgent--
		}
		if len(f.queue) == 0 {
			f.queue = f.queue[:0:0] // let the backing array go
		}
		f.mu.Unlock()
		f.put(pp.p.write(pp))
		// Only now, the buffer back: Flush then ends the packer (endPacker)
		// with none of its buffers out.
		pp.p.pending.Done()
	}
}
