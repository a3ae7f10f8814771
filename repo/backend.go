package repo

import (
	"context"
	"fmt"
	"io"
	"sync"
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
		more := ""
		if len(names) > 1 {
			more = fmt.Sprintf(" (one of the %d files it would delete)", len(names))
		}
		return fmt.Errorf("%s: %s%s is %w (S3 Object Lock, %s) until %s; %s; nothing was deleted",
			command, name, more, ErrRetained, mode, until.UTC().Format(time.RFC3339), retentionHint(command, mode))
	}
	return nil
}

// retentionHint says what to do about a file retained in mode.
func retentionHint(command, mode string) string {
	if mode == "GOVERNANCE" {
		return "these credentials cannot delete it: run " + command + " from the privileged host (--s3-bypass-governance, credentials with s3:BypassGovernanceRetention), or after the retention expires"
	}
	return "no credentials can delete it before then: run " + command + " after the retention expires"
}

// RetainedFile is a file the backend holds under a retention these
// credentials cannot lift (a dry run of forget or prune lists them).
type RetainedFile struct {
	Name  string    `json:"name"`
	Until time.Time `json:"retain_until"`
	Mode  string    `json:"mode"`
}

// retainedWorkers bounds the concurrent retention queries of Retained.
const retainedWorkers = 8

// Retained returns every one of names the backend cannot delete now, in
// the order of names; nil on a backend without retention (no request is
// made). It asks about all of them (up to retainedWorkers at a time),
// where CheckDeletable stops at the first.
func Retained(ctx context.Context, be Backend, names []string) ([]RetainedFile, error) {
	rt, ok := be.(Retainer)
	if !ok || !rt.ObjectLocked() || len(names) == 0 {
		return nil, nil
	}
	found := make([]RetainedFile, len(names))
	errs := make([]error, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(retainedWorkers, len(names)) {
		wg.Go(func() {
			for i := range next {
				until, mode, err := rt.Retention(ctx, names[i])
				found[i], errs[i] = RetainedFile{Name: names[i], Until: until.UTC(), Mode: mode}, err
			}
		})
	}
	for i := range names {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []RetainedFile
	for i, f := range found {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if !f.Until.IsZero() {
			out = append(out, f)
		}
	}
	return out, nil
}

// RetainedError is the error of a dry run of command that found files
// (of total it would delete) under retention: the real run would refuse,
// wrapping ErrRetained. nil when files is empty.
func RetainedError(command string, files []RetainedFile, total int) error {
	if len(files) == 0 {
		return nil
	}
	last := files[0]
	for _, f := range files[1:] {
		if f.Until.After(last.Until) {
			last = f
		}
	}
	return fmt.Errorf("%s --dry-run: %d of the %d files it would delete are %w (S3 Object Lock), the last until %s (%s, %s): the real run would refuse and delete nothing; %s",
		command, len(files), total, ErrRetained, last.Until.UTC().Format(time.RFC3339), last.Name, last.Mode, retentionHint(command, last.Mode))
}
