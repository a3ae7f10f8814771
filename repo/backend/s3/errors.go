package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"syscall"

	"github.com/minio/minio-go/v7"
)

// Sentinel errors, wrapped by the backend's errors where they apply.
var (
	// ErrAccessDenied means the server refused the credentials or the
	// request: wrong access key, wrong secret, or no permission.
	ErrAccessDenied = errors.New("access denied (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
	// ErrNoBucket means the bucket does not exist.
	ErrNoBucket = errors.New("bucket does not exist")
	// ErrUnreachable means the endpoint could not be reached or stopped
	// answering: connection refused, DNS failure, reset, or I/O timeout,
	// after all retries.
	ErrUnreachable = errors.New("endpoint unreachable")
)

// wrapErr turns a minio-go or network error into a one-line error naming the
// operation, endpoint, bucket and key, wrapping a sentinel (or fs.ErrNotExist)
// where one applies and the original error otherwise.
func (b *Backend) wrapErr(op, name string, err error) error {
	where := fmt.Sprintf("s3 backend: %s %s (bucket %q, key %q at %s)", op, name, b.cfg.Bucket, b.key(name), b.cfg.Endpoint)
	if name == "" {
		where = fmt.Sprintf("s3 backend: %s (bucket %q at %s)", op, b.cfg.Bucket, b.cfg.Endpoint)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", where, err)
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchKey":
		return fmt.Errorf("%s: %w", where, fs.ErrNotExist)
	case "NoSuchBucket":
		return fmt.Errorf("%s: %w", where, ErrNoBucket)
	case "AccessDenied":
		return fmt.Errorf("%s: %w: %s: %s", where, deniedError{}, resp.Code, resp.Message)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AllAccessDisabled":
		return fmt.Errorf("%s: %w: %s: %s", where, ErrAccessDenied, resp.Code, resp.Message)
	case "InvalidRange":
		return fmt.Errorf("%s: range beyond end of object: %w", where, errRange)
	case "":
		switch resp.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w", where, fs.ErrNotExist)
		case http.StatusForbidden:
			return fmt.Errorf("%s: %w", where, ErrAccessDenied)
		}
	}
	if isNetErr(err) {
		return fmt.Errorf("%s: %w: %v", where, ErrUnreachable, err)
	}
	if resp.Code != "" {
		return fmt.Errorf("%s: %s: %s (HTTP %d)", where, resp.Code, resp.Message, resp.StatusCode)
	}
	return fmt.Errorf("%s: %w", where, err)
}

var errRange = errors.New("requested range not satisfiable")

// deniedError is a request refused for want of permission (code
// AccessDenied) by credentials the server accepted: read-only credentials
// writing, for example. It is ErrAccessDenied and also fs.ErrPermission, so
// that callers knowing only the standard library tell a read-only
// repository from a broken one (a command that only reads then runs
// without a lock, docs/repository-format.md, "Locks").
type deniedError struct{}

func (deniedError) Error() string { return ErrAccessDenied.Error() }

func (deniedError) Is(target error) bool {
	return target == ErrAccessDenied || target == fs.ErrPermission
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, errStalled)
}

// transient reports whether err may go away if the request is sent again:
// network failures, timeouts, throttling and server errors. Wrong
// credentials, a missing bucket or key, and cancellation are final.
func transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var nr errNoRetry
	if errors.Is(err, context.Canceled) || errors.As(err, &nr) {
		return false
	}
	if rt := (errRetry{}); errors.As(err, &rt) {
		return true
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "AuthorizationHeaderMalformed", "InvalidRegion":
		// Signed for the wrong region, with no region configured (minio-go
		// guessed one): the answer names the bucket's region, which
		// minio-go then caches, so the next attempt is signed right. It
		// used to send that second request inside its own retries, which
		// it no longer makes (minioRetries).
		return resp.Region != ""
	case "NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"InvalidToken", "ExpiredToken", "AllAccessDisabled", "InvalidRange", "InvalidBucketName", "InvalidArgument",
		"NotImplemented":
		return false
	case "RequestTimeout", "RequestTimeTooSkewed", "SlowDown", "InternalError", "ServiceUnavailable",
		"XMinioServerNotInitialized", "RequestError", "ExpiredRequest", "IncompleteBody",
		// The body did not match its checksum: damaged in transit, so
		// sending it again is the cure.
		"BadDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch":
		return true
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
		return true
	}
	if resp.StatusCode != 0 {
		return false
	}
	// Not an S3 error response: a network failure, a timeout, an unexpected
	// EOF from a cut connection, or a short read from our own source.
	return !errors.Is(err, errShortSource)
}
