package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// Open returns a reader for length bytes of name starting at off; length < 0
// reads to the end. It issues one ranged GET, so reading a blob from a large
// pack transfers only that blob. A range past the end of the object is an
// error naming the file (wrapping io.ErrUnexpectedEOF), as in the local
// backend, because a short pack read always means a damaged or wrong file.
// A missing file gives an error wrapping fs.ErrNotExist.
//
// If the connection breaks while the caller reads, the reader resumes at the
// byte it had reached with a new ranged GET (up to Config.Retries times),
// so a reset in the middle of a 16 MiB pack costs the rest of the pack, not
// the whole restore.
func (b *Backend) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("s3 backend: open %s: negative offset %d", name, off)
	}
	if length == 0 {
		// A zero-length range cannot be expressed in HTTP; check existence.
		size, err := b.Stat(ctx, name)
		if err != nil {
			return nil, err
		}
		if off > size {
			return nil, fmt.Errorf("s3 backend: open %s: offset %d beyond end of %d-byte file: %w", name, off, size, io.ErrUnexpectedEOF)
		}
		return io.NopCloser(eofReader{}), nil
	}
	r := &rangeReader{b: b, ctx: ctx, name: name, off: off, remaining: length}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// rangeReader reads a byte range of one object, reopening it at the current
// offset when a read fails with a transient error.
type rangeReader struct {
	b         *Backend
	ctx       context.Context
	name      string
	off       int64 // next byte to read
	remaining int64 // bytes left to read; < 0: to the end
	body      io.ReadCloser
	resumes   int
}

func (r *rangeReader) open() error {
	var opts minio.GetObjectOptions
	var err error
	if r.remaining < 0 {
		err = opts.SetRange(r.off, 0)
		if r.off == 0 {
			opts = minio.GetObjectOptions{}
		}
	} else {
		err = opts.SetRange(r.off, r.off+r.remaining-1)
	}
	if err != nil {
		return fmt.Errorf("s3 backend: open %s: %w", r.name, err)
	}
	var body io.ReadCloser
	var info minio.ObjectInfo
	err = r.b.retry(r.ctx, "open", r.name, func() (err error) {
		body, info, _, err = r.b.core.GetObject(r.ctx, r.b.cfg.Bucket, r.b.key(r.name), opts)
		return err
	})
	if err != nil {
		if errors.Is(err, errRange) || minio.ToErrorResponse(err).Code == "InvalidRange" {
			// HTTP cannot ask for the empty range at the end of an object:
			// reading "to the end" from offset == size returns nothing, as the
			// Backend contract says, and only a start beyond the end fails.
			if r.remaining < 0 {
				if size, serr := r.b.Stat(r.ctx, r.name); serr == nil && r.off == size {
					r.remaining, r.body = 0, io.NopCloser(eofReader{})
					return nil
				}
			}
			return fmt.Errorf("s3 backend: open %s: range %d+%d beyond end of file: %w", r.name, r.off, r.remaining, io.ErrUnexpectedEOF)
		}
		return r.b.wrapErr("open", r.name, err)
	}
	if r.remaining >= 0 && info.Size != r.remaining {
		body.Close()
		return fmt.Errorf("s3 backend: open %s: range %d+%d beyond end of file (server sent %d bytes): %w",
			r.name, r.off, r.remaining, info.Size, io.ErrUnexpectedEOF)
	}
	if r.remaining < 0 {
		r.remaining = info.Size
	}
	r.body = body
	return nil
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	for {
		if r.body == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		r.remaining -= int64(n)
		if n > 0 {
			if err != nil && err != io.EOF {
				// Hand over the bytes now; the next Read reopens at r.off.
				r.body.Close()
				r.body = nil
			}
			return n, nil
		}
		switch {
		case err == nil:
			continue
		case err == io.EOF && r.remaining == 0:
			return 0, io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF // the server closed early
		}
		r.body.Close()
		r.body = nil
		if !transient(r.ctx, err) || r.resumes >= r.b.cfg.Retries {
			return 0, r.b.wrapErr("read", r.name, err)
		}
		r.resumes++
	}
}

func (r *rangeReader) Close() error {
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}
