package s3

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// List calls fn for every file below dir (recursively) with its name relative
// to the repository root and its size; dir "" lists the whole repository.
// A missing dir lists nothing. Keys that are not valid repository names
// (directory markers, foreign files) are skipped. Object stores list in key
// order, but callers must not rely on it: the local backend does not.
//
// A listing that fails part-way is resumed after the last key delivered, so
// fn sees every file once even across retries. An error from fn stops the
// listing and is returned as is.
func (b *Backend) List(ctx context.Context, dir string, fn func(name string, size int64) error) error {
	return b.ListModTimes(ctx, dir, func(name string, size int64, _ time.Time) error { return fn(name, size) })
}

// ListModTimes is List with each object's LastModified, which the object
// store sets by its own clock when the object is written (whole, by one PUT).
func (b *Backend) ListModTimes(ctx context.Context, dir string, fn func(name string, size int64, mtime time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir = strings.TrimSuffix(dir, "/")
	prefix := b.base
	if dir != "" {
		if err := ValidateName(dir); err != nil {
			return err
		}
		prefix += dir + "/"
	}
	var after string
	var fnErr error
	err := b.retry(ctx, "list", dir, func() error {
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for oi := range b.cl.ListObjects(lctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, StartAfter: after}) {
			if oi.Err != nil {
				return oi.Err
			}
			after = oi.Key
			name := strings.TrimPrefix(oi.Key, b.base)
			if ValidateName(name) != nil {
				slog.Debug("s3: skipping a key that is not a repository file name", "key", oi.Key)
				continue
			}
			if fnErr = fn(name, oi.Size, oi.LastModified); fnErr != nil {
				return nil
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		if dir == "" {
			dir = "repository"
		}
		return b.wrapErr("list", dir, err)
	}
	return nil
}
