package local

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Open returns a reader for length bytes of name starting at off; length < 0
// reads to the end. A range past the end of the file is an error naming the
// file (wrapping io.ErrUnexpectedEOF) rather than a silently short read,
// because a short pack read always means a damaged or wrong file.
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
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("local backend: open %s: %w", name, unwrapPath(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("local backend: open %s: %w", name, unwrapPath(err))
	}
	size := fi.Size()
	if length < 0 {
		if off > size {
			f.Close()
			return nil, fmt.Errorf("local backend: open %s: offset %d beyond end of %d-byte file: %w", name, off, size, io.ErrUnexpectedEOF)
		}
		length = size - off
	}
	if off > size || length > size-off {
		f.Close()
		return nil, fmt.Errorf("local backend: open %s: range %d+%d beyond end of %d-byte file: %w", name, off, length, size, io.ErrUnexpectedEOF)
	}
	return &rangeReader{SectionReader: io.NewSectionReader(f, off, length), f: f}, nil
}

type rangeReader struct {
	*io.SectionReader
	f *os.File
}

func (r *rangeReader) Close() error { return r.f.Close() }
