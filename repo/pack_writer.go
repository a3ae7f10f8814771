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

// packBufsKept is how many written packs' buffers a repository keeps for
// reuse. One: the kept buffers are live heap, and a first backup of three
// spaces has up to nine packs in flight beside them; with four kept (64 MiB)
// its live heap sat at cmd/memento's 200 MiB soft limit and the runtime
// collected 237-594 times per 1 GiB backup instead of 55-76, 1.3-1.4 CPU s
// more (docs/benchmarks.md, "session 14, end").
const packBufsKept = 1

// openPack is a pack being filled. buf has its final capacity from the start
// (see newOpenPack), so reserved ranges never move while they are sealed
// into; sealing tells the uploader when every reserved range is written.
type openPack struct {
	buf     []byte
	blobs   []index.BlobInfo
	sealing sync.WaitGroup
}

// packHeaderReserve is room kept after the blobs for the sealed header and
// trailer, about 50 bytes per blob: enough for a pack of 16 KiB chunks (the
// warm page file's were that size in parameter sets 1 and 2).
// A header that does not fit only costs a reallocation.
func packHeaderReserve(target int) int { return 64<<10 + target/256 }

// packBufs is a free list of the buffers of written packs, kept for the next
// ones: a pack buffer is 16 MiB that Go would otherwise zero on every
// allocation. A Repository owns one, bounded by packBufsKept.
type packBufs chan []byte

// newOpenPack returns an empty pack with room for at least n bytes of blobs,
// reusing a buffer of an earlier pack when one is free.
func (f packBufs) newOpenPack(target, n int) *openPack {
	want := max(target, n) + packHeaderReserve(target)
	select {
	case b := <-f:
		if cap(b) >= want {
			return &openPack{buf: b[:0]}
		}
	default:
	}
	// Aligned, so that the local backend writes the finished pack with
	// O_DIRECT straight from this buffer. Backed by transparent huge pages:
	// filled the first time, a 16 MiB buffer is otherwise 4,096 page faults,
	// each ~10 us of system time and more of wall time on a virtual machine.
	// A pack buffer lives until recycle drops it, which takes the advice
	// back (hugepage.Unadvise) before the Go heap reuses the range.
	b := directio.Alloc(want)
	hugepage.Advise(b)
	return &openPack{buf: b[:0]}
}

// recycle keeps a written pack's buffer for the next pack, up to the free
// list's capacity, and leaves the others to the garbage collector.
func (f packBufs) recycle(b []byte) {
	select {
	case f <- b[:0]:
	default:
		hugepage.Unadvise(b[:cap(b)])
	}
}

// NewPacker starts a packer whose uploader runs until flush.
func (r *Repository) NewPacker(ctx context.Context, space string) *Packer {
	p := &Packer{r: r, space: StorageSpace(space), target: int(r.cfg.PackSize), seen: map[chunk.ID]bool{},
		uploads: make(chan *openPack), done: make(chan struct{})}
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

func (p *Packer) upload(ctx context.Context, pp *openPack) error {
	pp.sealing.Wait()
	hdr := p.r.seal.seal(nil, encodePackHeader(p.space, pp.blobs), []byte(packHeaderAD))
	b := append(pp.buf, hdr...)
	b = append(b, encodePackTrailer(len(hdr))...)
	id := blake3.Sum256(b)
	start := time.Now()
	if err := p.r.be.Write(ctx, PackName(id), bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("write pack %s (%d blobs, %d bytes): %w", ShortHex(id), len(pp.blobs), len(b), err)
	}
	p.r.notePackRetained(id, start)
	p.r.packBufs.recycle(b)
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
		}
	}
	close(p.uploads)
	<-p.done
	return p.packs, p.stored, p.err
}

// Abort stops the uploaders without writing the partial pack and returns the
// packs that were written completely.
func (p *Packer) Abort() []index.PackInfo {
	close(p.uploads)
	<-p.done
	return p.packs
}
