package repo

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/index"
)

// packer gathers sealed blobs of one space into packs of about the target size
// and uploads finished packs in the background. Blobs are sealed by the
// callers (in parallel) before add, so the packer's lock covers only a copy.
// Packs never mix spaces: reading space A never touches space B's packs.
type packer struct {
	r      *Repository
	space  string
	target int

	mu    sync.Mutex
	cur   *bytes.Buffer
	blobs []index.BlobInfo
	seen  map[chunk.ID]bool // blobs added by this packer, to drop duplicates

	uploads chan pendingPack
	done    chan struct{} // closed when every uploader has returned
	upMu    sync.Mutex    // guards err, packs, stored
	err     error         // first upload error
	packs   []index.PackInfo
	stored  int64
}

// packUploaders is how many finished packs of one space are written at once.
// Two hide an object store's per-request latency; the hand-off is unbuffered,
// so a space holds at most three packs in memory (one filling, two writing),
// as many as one uploader with a queue of one did.
const packUploaders = 2

type pendingPack struct {
	buf   *bytes.Buffer
	blobs []index.BlobInfo
}

// newPacker starts a packer whose uploader runs until flush.
func (r *Repository) newPacker(ctx context.Context, space string) *packer {
	p := &packer{r: r, space: storageSpace(space), target: int(r.cfg.PackSize), seen: map[chunk.ID]bool{},
		uploads: make(chan pendingPack), done: make(chan struct{})}
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

// claim reports whether the caller should store blob id: it is false when the
// packer already has it, so concurrent workers never store a chunk twice.
func (p *packer) claim(id chunk.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[id] {
		return false
	}
	p.seen[id] = true
	return true
}

// add appends a sealed blob. It blocks while the uploader is busy with the
// previous pack, which bounds memory to about two packs per space.
func (p *packer) add(t BlobType, id chunk.ID, flags uint8, rawLen int, sealed []byte) error {
	p.mu.Lock()
	if p.cur == nil {
		p.cur = bytes.NewBuffer(make([]byte, 0, p.target+p.target/8))
	}
	p.blobs = append(p.blobs, index.BlobInfo{ID: id, Type: uint8(t), Flags: flags,
		Offset: uint32(p.cur.Len()), Length: uint32(len(sealed)), RawLength: uint32(rawLen)})
	p.cur.Write(sealed)
	var full pendingPack
	if p.cur.Len() >= p.target {
		full = pendingPack{buf: p.cur, blobs: p.blobs}
		p.cur, p.blobs = nil, nil
	}
	p.mu.Unlock()
	if full.buf == nil {
		return nil
	}
	select {
	case p.uploads <- full:
		return nil
	case <-p.done:
		return p.firstErr()
	}
}

func (p *packer) firstErr() error {
	p.upMu.Lock()
	defer p.upMu.Unlock()
	return p.err
}

func (p *packer) uploader(ctx context.Context) {
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

func (p *packer) upload(ctx context.Context, pp pendingPack) error {
	hdr := p.r.seal.seal(nil, encodePackHeader(p.space, pp.blobs), []byte(packHeaderAD))
	pp.buf.Write(hdr)
	pp.buf.Write(encodePackTrailer(len(hdr)))
	b := pp.buf.Bytes()
	id := blake3.Sum256(b)
	if err := p.r.be.Write(ctx, packName(id), bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("write pack %s (%d blobs, %d bytes): %w", shortHex(id), len(pp.blobs), len(b), err)
	}
	p.upMu.Lock()
	p.packs = append(p.packs, index.PackInfo{ID: id, Size: int64(len(b)), Space: p.space, Blobs: pp.blobs})
	p.stored += int64(len(b))
	p.upMu.Unlock()
	return nil
}

// flush uploads the last partial pack, waits for all uploads and returns every
// pack written. The packer cannot be used afterwards.
func (p *packer) flush() ([]index.PackInfo, int64, error) {
	p.mu.Lock()
	last := pendingPack{buf: p.cur, blobs: p.blobs}
	p.cur, p.blobs = nil, nil
	p.mu.Unlock()
	if last.buf != nil && len(last.blobs) > 0 {
		select {
		case p.uploads <- last:
		case <-p.done:
		}
	}
	close(p.uploads)
	<-p.done
	return p.packs, p.stored, p.err
}

// abort stops the uploaders without writing the partial pack and returns the
// packs that were written completely.
func (p *packer) abort() []index.PackInfo {
	close(p.uploads)
	<-p.done
	return p.packs
}
