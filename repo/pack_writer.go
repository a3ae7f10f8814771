package repo

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/index"
	"memento/repo/directio"
	"memento/repo/hugepage"
	"memento/repo/slabmem"
)

// Packer gathers the blobs of one space into packs of about the target size
// and uploads finished packs in the background. Callers (the pipeline's
// workers, in parallel) hand it stored blobs; it reserves each one's place in
// the open pack under its lock and seals it straight into that place outside
// the lock, so encryption runs on every core and no blob is copied after
// sealing. Packs never mix spaces: reading space A never touches space B's
// packs.
type Packer struct {
	r      *Repository
	space  string
	target int

	mu   sync.Mutex
	cur  *openPack
	seen map[chunk.ID]bool // blobs added by this packer, to drop duplicates

	uploads chan *openPack
	done    chan struct{} // closed when every uploader has returned
	upMu    sync.Mutex    // guards err, packs, stored
	err     error         // first upload error
	packs   []index.PackInfo
	stored  int64
}

// packUploaders is how many finished packs of one space are written at once.
// Two hide an object store's per-request latency; the hand-off is unbuffered,
// so a space holds at most three packs in memory (one filling, two writing).
const packUploaders = 2

// packBufsMapped is how many pack buffers a repository maps outside the Go
// heap (slabmem.Region) and reuses; more packs in flight at once take
// their buffers from the heap. A first backup of a data dir has up to
// three spaces with up to three packs each in flight (one filling, two
// writing); its heap profile held seven at its highest.
// The mapped buffers take their size off the heap's soft limit
// (slabmem), so the process's memory does not grow by them.
const packBufsMapped = 6

// openPack is a pack being filled. buf has its final capacity from the start
// (see newOpenPack), so reserved ranges never move while they are sealed
// into; sealing tells the uploader when every reserved range is written.
// reg is the mapped buffer under buf, nil for a heap buffer; mem is the
// whole buffer as allocated (upload may append past it into a new array).
type openPack struct {
	buf     []byte
	blobs   []index.BlobInfo
	sealing sync.WaitGroup
	reg     *slabmem.Region
	mem     []byte
}

// packHeaderReserve is room kept after the blobs for the sealed header and
// trailer, about 50 bytes per blob: enough for a pack of 16 KiB chunks (the
// warm page file's were that size in parameter sets 1 and 2).
// A header that does not fit only costs a reallocation.
func packHeaderReserve(target int) int { return 64<<10 + target/256 }

// packBufs hands out the buffers of packs: up to packBufsMapped mapped ones,
// kept for the next packs (a heap buffer of 16 MiB is zeroed on every
// allocation and faulted in again after the runtime's scavenger returned
// it), then heap ones. A Repository owns one. Every openPack from
// newOpenPack is given back exactly once with done, once nothing seals into
// it and no backend reads it; when the last packer of the repository ends,
// the idle mapped buffers are unmapped (a long-lived agent keeps none
// between backups).
type packBufs struct {
	mu      sync.Mutex
	free    []*slabmem.Region // mapped and idle
	mapped  int               // regions mapped: free, in packs, retired
	retired []*slabmem.Region // failed writes' buffers since the packers started: see done
	old     []*slabmem.Region // failed writes' buffers of the packers before
	packers int               // packers between NewPacker and Flush or Abort
}

// newOpenPack returns an empty pack with room for at least n bytes of blobs,
// reusing a mapped buffer of an earlier pack when one is free.
func (f *packBufs) newOpenPack(target, n int) *openPack {
	want := max(target, n) + packHeaderReserve(target)
	f.mu.Lock()
	var reg *slabmem.Region
	if k := len(f.free); k > 0 && len(f.free[k-1].Bytes()) >= want {
		reg = f.free[k-1]
		f.free[k-1] = nil
		f.free = f.free[:k-1]
	} else if f.mapped < packBufsMapped && n <= target {
		if reg = slabmem.MapRegion(want); reg != nil {
			f.mapped++
		}
	}
	f.mu.Unlock()
	if reg != nil {
		b := reg.Bytes()
		return &openPack{buf: b[:0], reg: reg, mem: b}
	}
	// Aligned, so that the local backend writes the finished pack with
	// O_DIRECT straight from this buffer. Backed by transparent huge pages:
	// filled the first time, a 16 MiB buffer is otherwise 4,096 page faults,
	// each ~10 us of system time and more of wall time on a virtual machine.
	// done takes the advice back (hugepage.Unadvise) before the Go heap
	// reuses the range.
	b := directio.Alloc(want)
	hugepage.Advise(b)
	return &openPack{buf: b[:0], mem: b}
}

// done gives back pp's buffer: a mapped one is kept for the next pack,
// a heap one is left to the garbage collector. Only once nothing seals into
// pp (its sealing is waited for) and no backend reads it. A buffer whose
// write failed (failed) may still be read by a backend's transport after
// Write returned (net/http closes a request's body in its own time), so it
// is neither reused (the request could still complete with other bytes
// under the pack's name) nor unmapped (a crash) until the packers that run
// after the failed ones have all ended, or the repository closes: at most
// packBufsMapped buffers, and a failed backup is the one that leaves them.
func (f *packBufs) done(pp *openPack, failed bool) {
	pp.sealing.Wait()
	mem, reg := pp.mem, pp.reg
	pp.buf, pp.mem, pp.reg = nil, nil, nil
	if reg == nil {
		if mem != nil {
			hugepage.Unadvise(mem[:cap(mem)])
		}
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if failed {
		f.retired = append(f.retired, reg)
		return
	}
	f.free = append(f.free, reg)
	if f.packers == 0 { // a pack given back after its packer ended
		f.unmapFree()
	}
}

// start and stop count the packers of the repository; stop unmaps the idle
// buffers when the last one ends.
func (f *packBufs) start() {
	f.mu.Lock()
	f.packers++
	f.mu.Unlock()
}

func (f *packBufs) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.packers--; f.packers == 0 {
		f.unmapFree()
		f.unmapOld()
		f.old, f.retired = f.retired, nil
	}
}

func (f *packBufs) unmapFree() {
	for _, r := range f.free {
		r.Unmap()
	}
	f.mapped -= len(f.free)
	f.free = nil
}

func (f *packBufs) unmapOld() {
	for _, r := range f.old {
		r.Unmap()
	}
	f.mapped -= len(f.old)
	f.old = nil
}

// close unmaps the idle and the retired buffers (Repository.Close). A pack
// still in a packer's hands keeps its buffer mapped: a packer that was never
// flushed or aborted leaks it rather than have it unmapped under it.
func (f *packBufs) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unmapFree()
	f.unmapOld()
	f.old, f.retired = f.retired, nil
	f.unmapOld()
}

// NewPacker starts a packer whose uploader runs until flush.
func (r *Repository) NewPacker(ctx context.Context, space string) *Packer {
	p := &Packer{r: r, space: StorageSpace(space), target: int(r.cfg.PackSize), seen: map[chunk.ID]bool{},
		uploads: make(chan *openPack), done: make(chan struct{})}
	r.packBufs.start()
	var wg sync.WaitGroup
	for range packUploaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.uploader(ctx)
		}()
	}
	go func() {
		wg.Wait()
		close(p.done)
	}()
	return p
}

// Claim reports whether the caller should store blob id: it is false when the
// packer already has it, so concurrent workers never store a chunk twice.
func (p *Packer) Claim(id chunk.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[id] {
		return false
	}
	p.seen[id] = true
	return true
}

// Add seals stored (a blob's stored form, rawLen bytes of plaintext) into the
// open pack. A pack is closed before a blob that would take it past the
// target, so packs stay within their buffer; the closed pack is handed to an
// uploader, which blocks while both uploaders are busy and so bounds memory
// to three packs per space.
func (p *Packer) Add(t BlobType, id chunk.ID, flags uint8, rawLen int, stored []byte) error {
	n := len(stored) + p.r.seal.overhead()
	p.mu.Lock()
	var full *openPack
	if p.cur != nil && len(p.cur.blobs) > 0 && (len(p.cur.buf)+n > p.target ||
		len(p.cur.buf)+n+p.tailSize(len(p.cur.blobs)+1) > cap(p.cur.buf)) {
		full, p.cur = p.cur, nil
	}
	if p.cur == nil || cap(p.cur.buf)-len(p.cur.buf) < n+packHeaderReserve(p.target) {
		if p.cur != nil { // a blob larger than the target after small ones
			full = p.cur
		}
		p.cur = p.r.packBufs.newOpenPack(p.target, n)
	}
	cur := p.cur
	off := len(cur.buf)
	cur.buf = cur.buf[:off+n]
	// dst is taken under the lock: cur.buf's header changes with every add,
	// the array under it never does (its capacity was reserved up front).
	dst := cur.buf[off : off : off+n]
	cur.blobs = append(cur.blobs, index.BlobInfo{ID: id, Type: uint8(t), Flags: flags,
		Offset: uint32(off), Length: uint32(n), RawLength: uint32(rawLen)})
	cur.sealing.Add(1)
	p.mu.Unlock()

	sealed := p.r.seal.seal(dst, stored, blobAD(t, id))
	cur.sealing.Done()
	if len(sealed) != n {
		// Cannot happen: overhead is exact. Caught here, not by a reader.
		panic(fmt.Sprintf("memento: sealed blob is %d bytes, reserved %d", len(sealed), n))
	}
	if full == nil {
		return nil
	}
	select {
	case p.uploads <- full:
		return nil
	case <-p.done:
		p.r.packBufs.done(full, false)
		return p.firstErr()
	}
}

// tailSize is what the sealed header and the trailer of a pack of blobs
// blobs take after them. Add closes a pack before its tail would outgrow the
// buffer's reserve (packHeaderReserve): a pack of thousands of small blobs
// (a source tree's files) otherwise had its whole 16 MiB buffer reallocated
// and copied to append the header.
func (p *Packer) tailSize(blobs int) int {
	return 2 + len(p.space) + 4 + blobs*packEntrySize + p.r.seal.overhead() + packTrailerSize
}

func (p *Packer) firstErr() error {
	p.upMu.Lock()
	defer p.upMu.Unlock()
	return p.err
}

func (p *Packer) uploader(ctx context.Context) {
	for pp := range p.uploads {
		if p.firstErr() != nil {
			p.r.packBufs.done(pp, false)
			continue // drain so that add never blocks forever
		}
		if err := p.upload(ctx, pp); err != nil {
			p.upMu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.upMu.Unlock()
		}
	}
}

// upload writes pp and gives its buffer back.
func (p *Packer) upload(ctx context.Context, pp *openPack) error {
	pp.sealing.Wait()
	hdr := p.r.seal.seal(nil, encodePackHeader(p.space, pp.blobs), []byte(packHeaderAD))
	// A header beyond the buffer's reserve makes append copy the pack to
	// the heap; pp keeps the buffer it was given for done.
	b := append(pp.buf, hdr...)
	b = append(b, encodePackTrailer(len(hdr))...)
	id := blake3.Sum256(b)
	start := time.Now()
	if err := p.r.be.Write(ctx, PackName(id), bytes.NewReader(b), int64(len(b))); err != nil {
		p.r.packBufs.done(pp, true)
		return fmt.Errorf("write pack %s (%d blobs, %d bytes): %w", ShortHex(id), len(pp.blobs), len(b), err)
	}
	p.r.notePackRetained(id, start)
	p.r.packBufs.done(pp, false)
	p.upMu.Lock()
	p.packs = append(p.packs, index.PackInfo{ID: id, Size: int64(len(b)), Space: p.space, Blobs: pp.blobs})
	p.stored += int64(len(b))
	p.upMu.Unlock()
	return nil
}

// Flush uploads the last partial pack, waits for all uploads and returns every
// pack written. The packer cannot be used afterwards.
func (p *Packer) Flush() ([]index.PackInfo, int64, error) {
	p.mu.Lock()
	last := p.cur
	p.cur = nil
	p.mu.Unlock()
	if last != nil && len(last.blobs) > 0 {
		select {
		case p.uploads <- last:
		case <-p.done:
			p.r.packBufs.done(last, false)
		}
	} else if last != nil {
		p.r.packBufs.done(last, false)
	}
	close(p.uploads)
	<-p.done
	p.r.packBufs.stop()
	return p.packs, p.stored, p.err
}

// Abort stops the uploaders without writing the partial pack and returns the
// packs that were written completely.
func (p *Packer) Abort() []index.PackInfo {
	p.mu.Lock()
	last := p.cur
	p.cur = nil
	p.mu.Unlock()
	if last != nil {
		p.r.packBufs.done(last, false)
	}
	close(p.uploads)
	<-p.done
	p.r.packBufs.stop()
	return p.packs
}
