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
	done    chan struct{}
	err     error // first upload error, read after done is closed
	packs   []index.PackInfo
	stored  int64
}

type pendingPack struct {
	buf   *bytes.Buffer
	blobs []index.BlobInfo
}

// newPacker starts a packer whose uploader runs until flush.
func (r *Repository) newPacker(ctx context.Context, space string) *packer {
	p := &packer{r: r, space: storageSpace(space), target: int(r.cfg.PackSize), seen: map[chunk.ID]bool{},
		uploads: make(chan pendingPack, 1), done: make(chan struct{})}
	go p.uploader(ctx)
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
		return p.err
	}
}

func (p *packer) uploader(ctx context.Context) {
	defer close(p.done)
	for pp := range p.uploads {
		if p.err != nil {
			continue // drain so that add never blocks forever
		}
		if err := p.upload(ctx, pp); err != nil {
			p.err = err
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
	p.packs = append(p.packs, index.PackInfo{ID: id, Size: int64(len(b)), Space: p.space, Blobs: pp.blobs})
	p.stored += int64(len(b))
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

// abort stops the uploader without writing the partial pack.
func (p *packer) abort() {
	close(p.uploads)
	<-p.done
}
