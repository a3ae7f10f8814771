package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"memento/repo"
)

// sourceFile is one source file as a destination's Write sees it: a reader
// that is also an io.ReaderAt and io.Seeker, so an object-store destination
// can retry a write from the start and upload the parts of a large file in
// parallel, whatever backend the bytes come from. Reads open the source
// lazily with ranged Opens and keep a few sequential streams, keyed by the
// offset each has reached, so sequential reads (the common case, and each
// part of a multipart upload) cost one Open, not one per buffer. Every byte
// read passes the rate limiter.
type sourceFile struct {
	ctx  context.Context
	be   repo.Backend
	name string
	size int64
	lim  *rateLimiter

	mu      sync.Mutex
	pos     int64 // Read/Seek position
	streams []*sourceStream
	err     error // first error from the source, for the caller to classify
}

type sourceStream struct {
	rc  io.ReadCloser
	off int64 // offset of the next byte rc yields
}

const maxSourceStreams = 8

func (f *sourceFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	off := f.pos
	f.mu.Unlock()
	if off >= f.size {
		return 0, io.EOF
	}
	n, err := f.readAt(p, off, false)
	f.mu.Lock()
	f.pos = off + int64(n)
	f.mu.Unlock()
	return n, err
}

func (f *sourceFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	return f.readAt(p, off, true)
}

func (f *sourceFile) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.size
	default:
		return 0, fmt.Errorf("replicate %s: bad whence %d", f.name, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("replicate %s: negative position %d", f.name, offset)
	}
	f.pos = offset
	return offset, nil
}

// readAt reads into p at off from a stream positioned there, opening one if
// none is. full asks for all of p (ReaderAt semantics).
func (f *sourceFile) readAt(p []byte, off int64, full bool) (int, error) {
	want := len(p)
	if rest := f.size - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	s, err := f.take(off)
	if err != nil {
		return 0, err
	}
	// Without a limiter, one read fills as much of p as the source gives:
	// the limiter's slices only exist to keep its reservations small.
	step := len(p)
	if f.lim != nil {
		step = limiterChunk
	}
	var n int
	for n < len(p) {
		chunk := p[n:min(len(p), n+step)]
		if err = f.lim.wait(f.ctx, len(chunk)); err != nil {
			break
		}
		var k int
		k, err = io.ReadFull(s.rc, chunk)
		n += k
		s.off += int64(k)
		if err != nil || !full {
			break
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("read %s: source ended at byte %d of %d: %w", f.name, s.off, f.size, io.ErrUnexpectedEOF)
		}
		f.fail(err)
		s.rc.Close()
		return n, err
	}
	f.give(s)
	if full && n < want {
		return n, io.EOF // ReaderAt: a short read past the end says why
	}
	return n, nil
}

func (f *sourceFile) take(off int64) (*sourceStream, error) {
	if err := f.ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	for i, s := range f.streams {
		if s.off == off {
			f.streams = append(f.streams[:i], f.streams[i+1:]...)
			f.mu.Unlock()
			return s, nil
		}
	}
	f.mu.Unlock()
	rc, err := f.be.Open(f.ctx, f.name, off, f.size-off)
	if err != nil {
		f.fail(err)
		return nil, err
	}
	return &sourceStream{rc: rc, off: off}, nil
}

func (f *sourceFile) give(s *sourceStream) {
	if s.off >= f.size {
		s.rc.Close()
		return
	}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	var drop *sourceStream
	if len(f.streams) > maxSourceStreams {
		drop, f.streams = f.streams[0], f.streams[1:]
	}
	f.mu.Unlock()
	if drop != nil {
		drop.rc.Close()
	}
}

func (f *sourceFile) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

// Close closes every open stream.
func (f *sourceFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		s.rc.Close()
	}
	f.streams = nil
	return nil
}
