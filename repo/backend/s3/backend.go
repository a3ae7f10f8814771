package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// minioRetries is how often minio-go itself sends one request: once. Every
// retry is the backoff loop's (retry.go), so that Config.Retries is the
// whole truth: with minio-go's own retries (it defaulted to 10, and was 3
// here) inside ours, one operation in a network partition made
// Config.Retries+1 times 3 attempts of Config.IOTimeout each, plus minio-go's
// backoffs; a command failing then also spent that budget again on its
// audit record and on removing its lock (~24 s for a 1 s timeout and one
// retry, now ~4 s).
const minioRetries = 1

// Backend stores repository files as objects in one bucket, below a prefix.
type Backend struct {
	cfg  Config
	cl   *minio.Client // every request but uploads with a trailer
	core minio.Core
	base string // key prefix with a trailing slash, or ""
	// trailerCl is cl with trailing checksums on (ChecksumCRC32C and
	// ChecksumAuto); it shares cl's transport, so Connections still bounds
	// the connections of both.
	trailerCl *minio.Client
	// noTrailers is set when the server refused an upload with a trailer
	// under ChecksumAuto: from then on uploads use the fallback.
	noTrailers atomic.Bool
	// locked says the bucket has Object Lock enabled (objectlock.go):
	// deletes go by version.
	locked bool
	// down is set when an operation ran out of retries because the
	// endpoint did not answer (ErrUnreachable), and cleared by the next
	// operation that succeeds. While it is set operations try once, without
	// retries (retry.go).
	down atomic.Bool
}

// New returns a Backend for cfg without contacting the server.
func New(cfg Config) (*Backend, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts := &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		Transport:    newTransport(cfg.Connections, cfg.IOTimeout),
		BucketLookup: minio.BucketLookupAuto,
		MaxRetries:   minioRetries,
	}
	cl, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("s3 backend: %s: %w", cfg, err)
	}
	topts := *opts
	topts.TrailingHeaders = true
	tcl, err := minio.New(cfg.Endpoint, &topts)
	if err != nil {
		return nil, fmt.Errorf("s3 backend: %s: %w", cfg, err)
	}
	b := &Backend{cfg: cfg, cl: cl, core: minio.Core{Client: cl}, trailerCl: tcl}
	if cfg.Prefix != "" {
		b.base = cfg.Prefix + "/"
	}
	return b, nil
}

// Open returns a Backend on an existing bucket. It checks the bucket once,
// so that wrong credentials, a missing bucket or an unreachable endpoint
// fail here with one clear line rather than deep inside a command.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.checkBucket(ctx, false); err != nil {
		return nil, err
	}
	return b, nil
}

// Create is Open that makes the bucket (in cfg.Region) when it is missing.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.checkBucket(ctx, true); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *Backend) checkBucket(ctx context.Context, create bool) error {
	var ok bool
	err := b.retry(ctx, "check bucket", "", func() (err error) {
		ok, err = b.cl.BucketExists(ctx, b.cfg.Bucket)
		return err
	})
	if err != nil {
		return b.wrapErr("check bucket", "", err)
	}
	if ok {
		return b.checkObjectLock(ctx)
	}
	if !create {
		return fmt.Errorf("s3 backend: bucket %q at %s: %w (create it, or run 'memento init' to create it)", b.cfg.Bucket, b.cfg.Endpoint, ErrNoBucket)
	}
	if b.cfg.ObjectLockDays > 0 {
		if err := b.makeLockedBucket(ctx); err != nil {
			return err
		}
		return b.checkObjectLock(ctx)
	}
	err = b.retry(ctx, "create bucket", "", func() error {
		err := b.cl.MakeBucket(ctx, b.cfg.Bucket, minio.MakeBucketOptions{Region: b.cfg.Region})
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return err
	})
	if err != nil {
		return b.wrapErr("create bucket", "", err)
	}
	return nil
}

// Config returns the backend's configuration, defaults filled in.
func (b *Backend) Config() Config { return b.cfg }

// Location returns the repository URL, e.g. "s3:http://127.0.0.1:9000/bucket/prefix".
func (b *Backend) Location() string { return b.cfg.String() }

func (b *Backend) key(name string) string { return b.base + name }

// Stat returns the size of the file name; the error wraps fs.ErrNotExist
// when it is absent.
func (b *Backend) Stat(ctx context.Context, name string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := ValidateName(name); err != nil {
		return 0, err
	}
	var size int64
	err := b.retry(ctx, "stat", name, func() error {
		oi, err := b.cl.StatObject(ctx, b.cfg.Bucket, b.key(name), minio.StatObjectOptions{})
		size = oi.Size
		return err
	})
	if err != nil {
		return 0, b.wrapErr("stat", name, err)
	}
	return size, nil
}

// Delete removes the file name; a missing file is not an error, so an
// interrupted prune can simply run again.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateName(name); err != nil {
		return err
	}
	if b.locked {
		return b.deleteVersions(ctx, name)
	}
	err := b.retry(ctx, "delete", name, func() error {
		return b.cl.RemoveObject(ctx, b.cfg.Bucket, b.key(name), minio.RemoveObjectOptions{})
	})
	if err != nil {
		err = b.wrapErr("delete", name, err)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return nil
}
