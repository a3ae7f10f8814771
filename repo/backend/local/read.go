package local

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// Open returns a reader for length bytes of name starting at off; length < 0
// reads to the end. A range past the end of the file is an error naming the
// file (wrapping io.ErrUnexpectedEOF) rather than a silently short read,
// because a short pack read always means a damaged or wrong file.
//
// Packs (data/...) are read through a small cache of open files (see
// handles.go); the reader is an io.ReaderAt too, and reads with pread.
func (b *Backend) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := b.path(name)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("local backend: open %s: negative offset %d", name, off)
	}
	var h *handle
	if cacheable(name) {
		h, err = handles.acquire(p)
	} else {
		h, err = openHandle(p)
	}
	if err != nil {
		return nil, fmt.Errorf("local backend: open %s: %w", name, unwrapPath(err))
	}
	release := func() {
		if cacheable(name) {
			handles.release(h)
		} else {
			h.f.Close()
		}
	}
	size := h.fi.Size()
	if length < 0 {
		if off > size {
			release()
			return nil, fmt.Errorf("local backend: open %s: offset %d beyond end of %d-byte file: %w", name, off, size, io.ErrUnexpectedEOF)
		}
		length = size - off
	}
	if off > size || length > size-off {
		release()
		return nil, fmt.Errorf("local backend: open %s: range %d+%d beyond end of %d-byte file: %w", name, off, length, size, io.ErrUnexpectedEOF)
	}
	return &rangeReader{SectionReader: io.NewSectionReader(h.f, off, length), release: release}, nil
}

// rangeReader reads one range of a file. Close is idempotent: the handle is
// given back once, however often it is called.
type rangeReader struct {
	*io.SectionReader
	once    sync.Once
	release func()
}

func (r *rangeReader) Close() error {
	r.once.Do(r.release)
	return nil
}
