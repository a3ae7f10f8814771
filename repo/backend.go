package repo

import (
	"context"
	"fmt"
	"io"
	"time"
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

// ModTimeLister is implemented by backends that know when the storage wrote
// each file, by the storage's own clock: a file's mtime on a local file
// system, an object's LastModified on S3. Locks use it to judge whether a
// lock was refreshed recently without trusting any host's clock (lock.go).
type ModTimeLister interface {
	// ListModTimes is List with each file's modification time.
	ListModTimes(ctx context.Context, dir string, fn func(name string, size int64, mtime time.Time) error) error
}

// SpaceReserver is implemented by backends that keep a little space in
// reserve (a local directory), so that forget and prune can take their lock
// and start freeing space when the file system is full (lock.go).
type SpaceReserver interface {
	// ReleaseReserve deletes the reserve, reporting how many bytes it freed
	// (0 when there was none).
	ReleaseReserve(ctx context.Context) (int64, error)
	// EnsureReserve creates the reserve when it is missing.
	EnsureReserve(ctx context.Context) error
}

// Retainer is implemented by backends whose storage can hold files under a
// retention that nobody, or only privileged credentials, can lift before it
// expires (S3 Object Lock). Forget and prune ask it before they delete
// anything (CheckDeletable), so that on a ransomware-resistant repository
// they refuse up front instead of failing halfway.
type Retainer interface {
	// ObjectLocked reports whether the storage may hold files under a
	// retention at all (the bucket has Object Lock enabled).
	ObjectLocked() bool
	// Retention returns until when the file may not be deleted by these
	// credentials, and the storage's name for the mode (e.g. "COMPLIANCE"),
	// or the zero time when it may be deleted now.
	Retention(ctx context.Context, name string) (until time.Time, mode string, err error)
}

// CheckDeletable returns an error wrapping ErrRetained naming the first of
// names the backend cannot delete now, and what to do; nil when every one
// may go (always, on a backend without retention). command names the
// caller in the message ("forget", "prune").
func CheckDeletable(ctx context.Context, be Backend, command string, names []string) error {
	rt, ok := be.(Retainer)
	if !ok {
		return nil
	}
	for _, name := range names {
		until, mode, err := rt.Retention(ctx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", command, err)
		}
		if until.IsZero() {
			continue
		}
		how := "no credentials can delete it before then: run " + command + " after the retention expires"
		if mode == "GOVERNANCE" {
			how = "these credentials cannot delete it: run " + command + " from the privileged host (--s3-bypass-governance, credentials with s3:BypassGovernanceRetention), or after the retention expires"
		}
		more := ""
		if len(names) > 1 {
			more = fmt.Sprintf(" (one of the %d files it would delete)", len(names))
		}
		return fmt.Errorf("%s: %s%s is %w (S3 Object Lock, %s) until %s; %s; nothing was deleted",
			command, name, more, ErrRetained, mode, until.UTC().Format(time.RFC3339), how)
	}
	return nil
}
