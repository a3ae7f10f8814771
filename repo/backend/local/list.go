package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// List calls fn for every regular file under dir, recursively, with its name
// relative to the repository root (slash-separated, e.g. "data/ab/ab12...")
// and its size. dir "" lists the whole repository; a missing dir lists
// nothing, as an object store would. Temporary files are skipped. Callers
// must not depend on the order (object stores order differently). An error
// from fn stops the listing and is returned as is.
func (b *Backend) List(ctx context.Context, dir string, fn func(name string, size int64) error) error {
	return b.ListModTimes(ctx, dir, func(name string, size int64, _ time.Time) error { return fn(name, size) })
}

// ListModTimes is List with each file's modification time, which is when the
// file system (whose clock is the storage's clock for every host writing
// to it) wrote the file: Write renames a fresh file into place.
func (b *Backend) ListModTimes(ctx context.Context, dir string, fn func(name string, size int64, mtime time.Time) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir = strings.TrimSuffix(dir, "/")
	start := b.root
	if dir != "" {
		p, err := b.path(dir)
		if err != nil {
			return err
		}
		start = p
	}
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// dir missing, or an entry deleted while we walk.
				return nil
			}
			return fmt.Errorf("local backend: list %s: %w", dir, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == start {
			if !d.IsDir() {
				return fmt.Errorf("local backend: list %s: not a directory", dir)
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("local backend: list %s: %w", dir, err)
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		return fn(path.Clean(filepath.ToSlash(rel)), fi.Size(), fi.ModTime())
	})
}
