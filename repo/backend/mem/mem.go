// Package mem is a repository backend held in memory, with fault injection,
// for tests: it keeps the whole contract of repo.Backend (and
// repo.ModTimeLister) as the local backend does, and a hook can make any
// operation fail, cut a read short or corrupt the bytes a read returns.
package mem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"memento/repo/backend/names"
)

// ErrInvalidName is wrapped by every error about a file name that could
// escape the repository or is otherwise not a plain relative name.
var ErrInvalidName = names.ErrInvalid

// Op names a backend operation, for fault injection.
type Op string

const (
	OpList   Op = "list"
	OpOpen   Op = "open"
	OpWrite  Op = "write"
	OpStat   Op = "stat"
	OpDelete Op = "delete"
)

// Fault is what an injected fault does to one operation. The zero Fault
// does nothing.
type Fault struct {
	// Err makes the operation fail with this error (wrapped, naming the
	// operation and the file) before it does anything.
	Err error
	// Short (Open only) makes the reader end after ShortAfter bytes of the
	// range with io.ErrUnexpectedEOF, as a connection dropped mid-read.
	Short      bool
	ShortAfter int64
	// Corrupt (Open only) is called with the range's offset in the file and
	// a private copy of the bytes the reader will return, to change them in
	// flight; the stored file stays intact.
	Corrupt func(off int64, b []byte)
}

// Hook decides the fault of one operation: op on name (dir for List), with
// the range asked for (Open; 0, 0 otherwise).
type Hook func(op Op, name string, off, length int64) Fault

// file is one stored file; data is never modified in place.
type file struct {
	data  []byte
	mtime time.Time
}

// Backend is a repository held in memory. It is safe for concurrent use.
type Backend struct {
	name string

	mu    sync.Mutex
	files map[string]*file
	hook  Hook
	now   func() time.Time
}

// New returns an empty in-memory backend; name is shown by Location
// ("mem:" + name).
func New(name string) *Backend {
	return &Backend{name: name, files: map[string]*file{}, now: time.Now}
}

// SetHook installs h (nil removes it). It is consulted by every operation.
func (b *Backend) SetHook(h Hook) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hook = h
}

// FailOn makes every op on names for which match reports true fail with err
// (a shorthand for SetHook).
func (b *Backend) FailOn(op Op, match func(name string) bool, err error) {
	b.SetHook(func(o Op, name string, _, _ int64) Fault {
		if o == op && match(name) {
			return Fault{Err: err}
		}
		return Fault{}
	})
}

// SetClock sets the clock that stamps written files (ListModTimes); the
// default is time.Now.
func (b *Backend) SetClock(now func() time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = now
}

// Bytes returns a copy of a stored file, or false if it does not exist.
func (b *Backend) Bytes(name string) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[name]
	if !ok {
		return nil, false
	}
	return slices.Clone(f.data), true
}

// Damage changes a stored file as storage rot would: fn gets a copy of its
// bytes and returns the new content (shorter truncates it). It fails with
// an error wrapping fs.ErrNotExist if the file is missing.
func (b *Backend) Damage(name string, fn func(data []byte) []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[name]
	if !ok {
		return fmt.Errorf("mem backend: damage %s: %w", name, fs.ErrNotExist)
	}
	b.files[name] = &file{data: fn(slices.Clone(f.data)), mtime: f.mtime}
	return nil
}

// Location names the backend for messages.
func (b *Backend) Location() string { return "mem:" + b.name }

// fault asks the hook about one operation.
func (b *Backend) fault(op Op, name string, off, length int64) Fault {
	b.mu.Lock()
	h := b.hook
	b.mu.Unlock()
	if h == nil {
		return Fault{}
	}
	return h(op, name, off, length)
}

// check is what every operation does first: ctx, the name, the hook.
func (b *Backend) check(ctx context.Context, op Op, name string, off, length int64) (Fault, error) {
	if err := ctx.Err(); err != nil {
		return Fault{}, err
	}
	if name != "" || op != OpList {
		if p := names.Problem(name); p != "" {
			return Fault{}, fmt.Errorf("mem backend: %w %q: %s", ErrInvalidName, name, p)
		}
	}
	f := b.fault(op, name, off, length)
	if f.Err != nil {
		return f, fmt.Errorf("mem backend: %s %s: %w", op, name, f.Err)
	}
	return f, nil
}

// isDir reports whether name is a directory: some file lies below it.
// b.mu is held.
func (b *Backend) isDir(name string) bool {
	prefix := name + "/"
	for n := range b.files {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// fileParent returns a parent of name that is a file, or "". b.mu is held.
func (b *Backend) fileParent(name string) string {
	for i := range len(name) {
		if name[i] == '/' {
			if _, ok := b.files[name[:i]]; ok {
				return name[:i]
			}
		}
	}
	return ""
}

// lookup returns the file name, or an error naming op: wrapping
// fs.ErrNotExist when it is missing. b.mu is held.
func (b *Backend) lookup(op Op, name string) (*file, error) {
	f, ok := b.files[name]
	switch {
	case ok:
		return f, nil
	case b.isDir(name):
		return nil, fmt.Errorf("mem backend: %s %s: not a regular file", op, name)
	}
	return nil, fmt.Errorf("mem backend: %s %s: %w", op, name, fs.ErrNotExist)
}

// Stat returns the size of the file name. The error wraps fs.ErrNotExist when
// the file is absent.
func (b *Backend) Stat(ctx context.Context, name string) (int64, error) {
	if _, err := b.check(ctx, OpStat, name, 0, 0); err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := b.lookup(OpStat, name)
	if err != nil {
		return 0, err
	}
	return int64(len(f.data)), nil
}

// Delete removes the file name; a file that is already absent is not an error.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if _, err := b.check(ctx, OpDelete, name, 0, 0); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.files, name)
	return nil
}

// Open returns a reader for length bytes of name starting at off; length < 0
// reads to the end. A range past the end of the file is an error naming the
// file (wrapping io.ErrUnexpectedEOF), as on the local backend. The reader
// sees the file as it was when opened.
func (b *Backend) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	fault, err := b.check(ctx, OpOpen, name, off, length)
	if err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("mem backend: open %s: negative offset %d", name, off)
	}
	b.mu.Lock()
	f, err := b.lookup(OpOpen, name)
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	size := int64(len(f.data))
	if length < 0 {
		if off > size {
			return nil, fmt.Errorf("mem backend: open %s: offset %d beyond end of %d-byte file: %w", name, off, size, io.ErrUnexpectedEOF)
		}
		length = size - off
	}
	if off > size || length > size-off {
		return nil, fmt.Errorf("mem backend: open %s: range %d+%d beyond end of %d-byte file: %w", name, off, length, size, io.ErrUnexpectedEOF)
	}
	data := f.data[off : off+length : off+length]
	if fault.Corrupt != nil {
		data = slices.Clone(data)
		fault.Corrupt(off, data)
	}
	r := &reader{name: name, data: data}
	if fault.Short && fault.ShortAfter < int64(len(data)) {
		r.data, r.short = data[:max(fault.ShortAfter, 0)], true
	}
	return r, nil
}

// reader reads one range; a short one ends with io.ErrUnexpectedEOF.
type reader struct {
	name  string
	data  []byte
	short bool
}

func (r *reader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.short {
			return 0, fmt.Errorf("mem backend: read %s: %w", r.name, io.ErrUnexpectedEOF)
		}
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func (r *reader) Close() error { return nil }

// Write stores exactly size bytes from r as the file name, atomically:
// readers see either no file or the whole file. A file that already exists
// with the same size is kept and r is not read (files are
// content-addressed); another size is an error wrapping fs.ErrExist. If r
// yields fewer or more than size bytes, or ctx is cancelled mid-copy, Write
// fails and stores nothing.
func (b *Backend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	if _, err := b.check(ctx, OpWrite, name, 0, size); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("mem backend: write %s: negative size %d", name, size)
	}
	if done, err := b.existing(name, size); done || err != nil {
		return err
	}
	data, err := readExact(ctx, r, size)
	if err != nil {
		return fmt.Errorf("mem backend: write %s: %w", name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if f, ok := b.files[name]; ok { // another writer was first
		if int64(len(f.data)) != size {
			return fmt.Errorf("mem backend: write %s: exists with size %d, not %d: %w", name, len(f.data), size, fs.ErrExist)
		}
		return nil
	}
	if p := b.fileParent(name); p != "" {
		return fmt.Errorf("mem backend: write %s: %s is not a directory", name, p)
	}
	if b.isDir(name) {
		return fmt.Errorf("mem backend: write %s: exists and is not a regular file: %w", name, fs.ErrExist)
	}
	b.files[name] = &file{data: data, mtime: b.now()}
	return nil
}

// existing says whether name already holds size bytes (done), or why it
// cannot be written.
func (b *Backend) existing(name string, size int64) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if f, ok := b.files[name]; ok {
		if int64(len(f.data)) != size {
			return false, fmt.Errorf("mem backend: write %s: exists with size %d, not %d: %w", name, len(f.data), size, fs.ErrExist)
		}
		return true, nil
	}
	if p := b.fileParent(name); p != "" {
		return false, fmt.Errorf("mem backend: write %s: %s is not a directory", name, p)
	}
	if b.isDir(name) {
		return false, fmt.Errorf("mem backend: write %s: exists and is not a regular file: %w", name, fs.ErrExist)
	}
	return false, nil
}

// readExact reads exactly size bytes from r, checking ctx before every read.
func readExact(ctx context.Context, r io.Reader, size int64) ([]byte, error) {
	data := make([]byte, 0, min(size, 64<<20))
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := r.Read(buf)
		if int64(len(data))+int64(n) > size {
			return nil, fmt.Errorf("source has more than the declared %d bytes", size)
		}
		data = append(data, buf[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(data)) < size {
		return nil, fmt.Errorf("source ended after %d of the declared %d bytes: %w", len(data), size, io.ErrUnexpectedEOF)
	}
	return data, nil
}

// List calls fn for every file under dir, recursively, with its name
// relative to the repository root and its size, in no particular order. dir
// "" lists the whole repository; a missing dir lists nothing. An error from
// fn stops the listing and is returned as is.
func (b *Backend) List(ctx context.Context, dir string, fn func(name string, size int64) error) error {
	return b.ListModTimes(ctx, dir, func(name string, size int64, _ time.Time) error { return fn(name, size) })
}

// ListModTimes is List with each file's modification time: when it was
// written, by the backend's clock (SetClock).
func (b *Backend) ListModTimes(ctx context.Context, dir string, fn func(name string, size int64, mtime time.Time) error) error {
	dir = strings.TrimSuffix(dir, "/")
	if _, err := b.check(ctx, OpList, dir, 0, 0); err != nil {
		return err
	}
	type entry struct {
		name  string
		size  int64
		mtime time.Time
	}
	var entries []entry
	b.mu.Lock()
	if _, ok := b.files[dir]; ok && dir != "" {
		b.mu.Unlock()
		return fmt.Errorf("mem backend: list %s: not a directory", dir)
	}
	for n, f := range b.files {
		if dir == "" || strings.HasPrefix(n, dir+"/") {
			entries = append(entries, entry{n, int64(len(f.data)), f.mtime})
		}
	}
	b.mu.Unlock()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e.name, e.size, e.mtime); err != nil {
			return err
		}
	}
	return nil
}
