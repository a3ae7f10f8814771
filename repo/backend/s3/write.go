package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"strings"

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
//
// How the server learns that the bytes arrived intact is Config.Checksum;
// under ChecksumAuto a server that refuses the CRC32C checksum switches the
// backend, for good, to minio-go's defaults, and the file is sent again.
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
	ras, seekable := r.(readAtSeeker)
	var start int64
	if seekable {
		var err error
		if start, err = ras.Seek(0, io.SeekCurrent); err != nil {
			seekable = false
		}
	}
	attempts := 0
	put := func(cl *minio.Client, mode UploadChecksum) error {
		opts := b.putOptions(size, mode)
		b.setRetention(name, &opts)
		if mode == ChecksumCRC32C && opts.DisableMultipart && inMemory(r) {
			// The whole body is in memory (every pack, index file and
			// manifest a backup writes): a CRC32C pass costs next to
			// nothing here, and sending it as a header keeps the body plain.
			// A trailer makes the server decode aws-chunked framing, which
			// cost MinIO about half again the CPU of a plain body.
			sum, err := crc32cOf(io.NewSectionReader(ras, start, size))
			if err != nil {
				return errNoRetry{err}
			}
			opts.Checksum = minio.ChecksumNone
			opts.UserMetadata = map[string]string{"X-Amz-Checksum-Crc32c": sum}
		}
		return b.retry(ctx, "write", name, func() error {
			attempts++
			if attempts > 1 {
				if !seekable {
					return errNoRetry{errors.New("source cannot be re-read for a retry")}
				}
				if _, err := ras.Seek(start, io.SeekStart); err != nil {
					return errNoRetry{err}
				}
			}
			var body io.Reader
			if seekable {
				// A SectionReader gives minio-go ReadAt for parallel parts and
				// Seek for its own per-request retries.
				body = io.NewSectionReader(ras, start, size)
			} else {
				body = &countingReader{r: r, want: size}
			}
			info, err := cl.PutObject(ctx, b.cfg.Bucket, b.key(name), body, size, opts)
			if err != nil {
				if cr, ok := body.(*countingReader); ok && cr.short() {
					return errNoRetry{fmt.Errorf("%w: got %d of %d bytes: %w", errShortSource, cr.n, size, io.ErrUnexpectedEOF)}
				}
				if mode == ChecksumSHA256 && minio.ToErrorResponse(err).Code == "SignatureDoesNotMatch" {
					// A signed payload damaged in transit fails its chunk
					// signature. Wrong credentials fail long before, in
					// Open's bucket check, so this one is worth resending.
					return errRetry{err}
				}
				return err
			}
			if info.Size != size {
				return fmt.Errorf("server stored %d bytes, not %d", info.Size, size)
			}
			return nil
		})
	}
	cl, mode := b.uploader()
	err := put(cl, mode)
	if err != nil && b.cfg.Checksum == ChecksumAuto && mode == ChecksumCRC32C && refusedByServer(ctx, err) {
		// Perhaps a server that does not know trailing checksums: fall
		// back for good and send this file again the old way. A request
		// that was simply bad fails again, with the server's own error.
		fcl, fmode := b.fallbackUploader()
		if b.noTrailers.CompareAndSwap(false, true) {
			slog.Warn("s3: the server refused an upload with a CRC32C checksum; uploading without from now on (set MEMENTO_S3_CHECKSUM to choose)",
				"endpoint", b.cfg.Endpoint, "now", string(fmode), "err", err)
		}
		err = put(fcl, fmode)
	}
	if err != nil {
		var nr errNoRetry
		var rt errRetry
		if errors.As(err, &nr) {
			err = nr.err
		} else if errors.As(err, &rt) {
			err = rt.err
		}
		if errors.Is(err, errShortSource) {
			return fmt.Errorf("s3 backend: write %s: %w", name, err)
		}
		return b.wrapErr("write", name, err)
	}
	return nil
}

// uploader returns the client and checksum mode of the next upload.
func (b *Backend) uploader() (*minio.Client, UploadChecksum) {
	switch b.cfg.Checksum {
	case ChecksumAuto:
		if b.noTrailers.Load() {
			return b.fallbackUploader()
		}
		return b.trailerCl, ChecksumCRC32C
	case ChecksumCRC32C:
		return b.trailerCl, ChecksumCRC32C
	}
	return b.cl, b.cfg.Checksum
}

// fallbackUploader is what ChecksumAuto uses on a server without trailing
// checksums: minio-go's defaults.
func (b *Backend) fallbackUploader() (*minio.Client, UploadChecksum) {
	if b.cfg.Secure {
		return b.cl, ChecksumNone
	}
	return b.cl, ChecksumSHA256
}

// putOptions are the PutObject options of a size-byte upload in mode.
func (b *Backend) putOptions(size int64, mode UploadChecksum) minio.PutObjectOptions {
	opts := minio.PutObjectOptions{
		ContentType:  "application/octet-stream",
		StorageClass: b.cfg.StorageClass,
		PartSize:     uint64(b.cfg.PartSize),
		NumThreads:   uint(b.cfg.PartThreads),
		// minio-go signs the payload (SHA-256 of every chunk) unless told
		// not to; every other mode proves the bytes in another way.
		DisableContentSha256: mode != ChecksumSHA256,
	}
	if size <= b.cfg.SinglePutLimit {
		opts.DisableMultipart = true
	}
	if mode == ChecksumCRC32C {
		// Asked for explicitly: minio-go's automatic CRC on single PUTs
		// is skipped (v7.4.1) because its own algorithm header looks
		// like a checksum the caller set.
		opts.Checksum = minio.ChecksumCRC32C
	}
	if mode == ChecksumMD5 {
		opts.SendContentMd5 = true
		// Without this, minio-go uploads the parts of an MD5-summed
		// multipart upload one after the other.
		opts.ConcurrentStreamParts = !opts.DisableMultipart && opts.NumThreads > 1
	}
	return opts
}

// inMemory says whether r reads from memory, where an extra pass for a
// checksum is cheaper than any other way of getting one.
func inMemory(r io.Reader) bool {
	switch r.(type) {
	case *bytes.Reader, *strings.Reader:
		return true
	}
	return false
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cOf returns the base64 CRC32C of r, as S3's x-amz-checksum-crc32c wants it.
func crc32cOf(r io.Reader) (string, error) {
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// refusedByServer says whether err is the server's answer to a request it
// would not take (a 4xx or 501 other than for a missing bucket or missing
// rights), as opposed to a network failure or a cancellation.
func refusedByServer(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, errShortSource) {
		return false
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
		"ExpiredToken", "AllAccessDisabled", "InvalidBucketName":
		// Not about checksums: the fallback would fail the same way.
		return false
	}
	switch {
	case resp.StatusCode >= 400 && resp.StatusCode < 500, resp.StatusCode == 501:
		return true
	}
	return false
}

// errNoRetry wraps an error that the retry loop must not retry.
type errNoRetry struct{ err error }

func (e errNoRetry) Error() string { return e.err.Error() }
func (e errNoRetry) Unwrap() error { return e.err }

// errRetry wraps an error that the retry loop must retry although its
// code alone would say it is final.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

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
