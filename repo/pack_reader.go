package repo

import (
	"context"
	"fmt"
	"io"

	"memento/index"
)

// ReadPackHeader reads the trailer and sealed header at the end of a pack and
// returns what the pack says it holds: the index can be rebuilt from packs alone.
func (r *Repository) ReadPackHeader(ctx context.Context, id [32]byte, size int64) (index.PackInfo, error) {
	name := PackName(id)
	what := "pack " + ShortHex(id)
	if size < packTrailerSize {
		return index.PackInfo{}, Corruptf(what, "%d bytes is shorter than a trailer (truncated?)", size)
	}
	// One read usually gets trailer and header together.
	tail := min(size, 64<<10)
	b, err := ReadRange(ctx, r.be, name, size-tail, tail)
	if err != nil {
		return index.PackInfo{}, err
	}
	hl, err := decodePackTrailer(b[len(b)-packTrailerSize:], size)
	if err != nil {
		return index.PackInfo{}, &CorruptError{What: what, Detail: "trailer", Err: err}
	}
	if hl+packTrailerSize > tail {
		if b, err = ReadRange(ctx, r.be, name, size-packTrailerSize-hl, hl+packTrailerSize); err != nil {
			return index.PackInfo{}, err
		}
	}
	sealed := b[len(b)-packTrailerSize-int(hl) : len(b)-packTrailerSize]
	plain, err := r.seal.open(nil, sealed, []byte(packHeaderAD))
	if err != nil {
		return index.PackInfo{}, &CorruptError{What: what, Detail: "header cannot be authenticated", Err: err}
	}
	space, blobs, err := decodePackHeader(plain, size-packTrailerSize-hl)
	if err != nil {
		return index.PackInfo{}, &CorruptError{What: what, Detail: "header", Err: err}
	}
	return index.PackInfo{ID: id, Size: size, Space: space, Blobs: blobs}, nil
}

func ReadRange(ctx context.Context, be Backend, name string, off, n int64) ([]byte, error) {
	rc, err := be.Open(ctx, name, off, n)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", name, off, err)
	}
	return b, nil
}
