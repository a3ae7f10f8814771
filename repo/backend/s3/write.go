package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"
)

// errShortSource marks a source that had fewer bytes than declared: the
// caller's fault, never worth a retry.
var errShortSource = errors.New("source ended before the declared size")

// readAtSeeker is what a source must offer for a write to be retried (the
// body is re-read from the start) and for a multipart upload to read its
// parts in parallel: *bytes.Reader, *os.File, *io.SectionReader.
type readAtSeeker interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// Write stores exactly size bytes from r as the object name. A PUT is atomic
// on S3: readers see the whole object or none, so there is no temporary name
// and no rename. Files up to Config.SinglePutLimit go up in one PUT; larger
// ones as a multipart upload of Config.PartSize parts, Config.PartThreads at
// once (aborted, leaving nothing, if it fails).
//
// Repository files are named by their content, so sending the same write
// twice stores the same bytes twice: Write therefore retries transient
// failures, rewinding r, when r is seekable (readAtSeeker). A non-seekable r
// gets one attempt (minio-go's quick retries included only for parts it
// buffers itself). An existing object is overwritten without a look first:
// one request less per pack, and the bytes are the same.
func (b *Backend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateName(name); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("s3 backend: write %s: negative size %d", name, size)
	}
	opts := minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		StorageClass: b.cfg.StorageClass,
		PartSize:     uint64(b.cfg.PartSize),
		NumThreads:   uint(b.cfg.PartThreads),
	}
	if size <= b.cfg.SinglePutLimit {
		opts.DisableMultipart = true
	}
	ras, seekable := r.(readAtSeeker)
	var start int64
	if seekable {
		var err error
		if start, err = ras.Seek(0, io.SeekCurrent); err != nil {
			seekable = false
		}
	}
	attempts := 0
	err := b.retry(ctx, "write", name, func() error {
		attempts++
		body := r
		if attempts > 1 {
			if !seekable {
				return errNoRetry{errors.New("source cannot be re-read for a retry")}
			}
			if _, err := ras.Seek(start, io.SeekStart); err != nil {
				return errNoRetry{err}
			}
		}
		if seekable {
			// A SectionReader gives minio-go ReadAt for parallel parts and
			// Seek for its own per-request retries.
			body = io.NewSectionReader(ras, start, size)
		} else {
			body = &countingReader{r: r, want: size}
		}
		info, err := b.cl.PutObject(ctx, b.cfg.Bucket, b.key(name), body, size, opts)
		if err != nil {
			if cr, ok := body.(*countingReader); ok && cr.short() {
				return errNoRetry{fmt.Errorf("%w: got %d of %d bytes: %w", errShortSource, cr.n, size, io.ErrUnexpectedEOF)}
			}
			return err
		}
		if info.Size != size {
			return fmt.Errorf("server stored %d bytes, not %d", info.Size, size)
		}
		return nil
	})
	if err != nil {
		var nr errNoRetry
		if errors.As(err, &nr) {
			err = nr.err
		}
		if errors.Is(err, errShortSource) {
			return fmt.Errorf("s3 backend: write %s: %w", name, err)
		}
		return b.wrapErr("write", name, err)
	}
	return nil
}

// errNoRetry wraps an error that the retry loop must not retry.
type errNoRetry struct{ err error }

func (e errNoRetry) Error() string { return e.err.Error() }
func (e errNoRetry) Unwrap() error { return e.err }

// countingReader notices a source that ends early.
type countingReader struct {
	r    io.Reader
	n    int64
	want int64
	eof  bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func (c *countingReader) short() bool { return c.eof && c.n < c.want }
