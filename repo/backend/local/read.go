package local

import (
	"context"
	"fmt"
	"io"
	"sync"

	"memento/repo/directio"
)

// Open returns a reader for length bytes of name starting at off; length < 0
// reads to the end. A range past the end of the file is an error naming the
// file (wrapping io.ErrUnexpectedEOF) rather than a silently short read,
// because a short pack read always means a damaged or wrong file.
//
// Packs (data/...) are read through the Backend's small cache of open files
// (see handles.go; uncached after Close); the reader is an io.ReaderAt too,
// and reads with pread.
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
		h, err = b.handles.acquire(p)
	} else {
		h, err = openHandle(p)
	}
	if err != nil {
		return nil, fmt.Errorf("local backend: open %s: %w", name, unwrapPath(err))
	}
	release := func() {
		if cacheable(name) {
			b.handles.release(h)
		} else {
			h.close()
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
	return &rangeReader{SectionReader: io.NewSectionReader(h.f, off, length), h: h, name: name, off: off, n: length, release: release}, nil
}

// rangeReader reads one range of a file. Close is idempotent: the handle is
// given back once, however often it is called.
type rangeReader struct {
	*io.SectionReader
	h       *handle
	name    string
	off, n  int64
	once    sync.Once
	release func()
}

// ReadSlack is how many bytes beyond the range's length ReadInto needs.
const ReadSlack = directio.ReadSlack

// ReadInto reads the whole range into buf, which must hold at least its
// length plus ReadSlack bytes, and returns the range's bytes as a slice of
// buf. Ranges of directio.MinReadSize and more are read around the page
// cache (O_DIRECT, straight into buf) where the file system allows it: an
// L2 verify reads each pack once, and caching it only costs CPU (and evicts
// what the host has cached).
// Smaller ranges, and file systems that refuse O_DIRECT (tmpfs), read
// through the page cache. A range the file no longer holds (truncated since
// Open) is io.ErrUnexpectedEOF naming the file. ReadInto ignores and does
// not move the reader's position.
func (r *rangeReader) ReadInto(buf []byte) ([]byte, error) {
	return r.readInto(buf, r.n >= directio.MinReadSize)
}

// ReadIntoUncached is ReadInto around the page cache whatever the range's
// length, where the file system allows it: a backup reads the bases of
// delta blobs (a few KiB each, scattered over the packs of the warm page
// file), and through the page cache each such read of a cold pack pulled
// in the device's readahead (8 MiB on the bench's VM: 600 MB read for
// 18 MB of bases, and 0.5 CPU s of system time).
func (r *rangeReader) ReadIntoUncached(buf []byte) ([]byte, error) {
	return r.readInto(buf, true)
}

func (r *rangeReader) readInto(buf []byte, direct bool) ([]byte, error) {
	if int64(len(buf)) < r.n+ReadSlack {
		return nil, fmt.Errorf("local backend: read %s: %d-byte buffer for %d bytes", r.name, len(buf), r.n)
	}
	if direct {
		if d := r.h.directFile(); d != nil {
			b, err := directio.ReadFullAt(d, buf, r.off, r.n)
			if err == nil {
				return b, nil
			}
			if !directio.Refused(err) {
				return nil, fmt.Errorf("local backend: read %s: %w", r.name, err)
			}
			r.h.noDirect.Store(true) // and read it as usual
		}
	}
	b := buf[:r.n:r.n]
	if _, err := r.h.f.ReadAt(b, r.off); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("local backend: read %s: bytes %d..%d: %w", r.name, r.off, r.off+r.n, err)
	}
	return b, nil
}

func (r *rangeReader) Close() error {
	r.once.Do(r.release)
	return nil
}
