package repo

import (
	"context"
	"io"
)

// Backend is where repository files live: a local directory, an object store.
// It is deliberately small and assumes nothing POSIX: no rename, no exclusive
// create, no listing order. Every file is written whole, once, and never
// modified, which is what makes object stores and plain copies work.
type Backend interface {
	// List calls fn for every file below dir (recursively), in no particular order.
	List(ctx context.Context, dir string, fn func(name string, size int64) error) error
	// Open reads length bytes at off of a file; length < 0 reads to its end.
	Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)
	// Write stores a whole file atomically: readers see all of it or none.
	Write(ctx context.Context, name string, r io.Reader, size int64) error
	// Stat returns a file's size, or an error wrapping fs.ErrNotExist.
	Stat(ctx context.Context, name string) (int64, error)
	// Delete removes a file; a missing file is not an error.
	Delete(ctx context.Context, name string) error
	// Location names the backend for messages, e.g. "/srv/backup" or "s3:host/bucket".
	Location() string
}
