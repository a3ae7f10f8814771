package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"memento/repo/directio"
)

// copyBufSize is large enough that a 16 MiB pack is written in a handful of
// syscalls, small enough that ctx is checked often.
const copyBufSize = 1 << 20

// Write stores exactly size bytes from r as the file name, atomically: the
// bytes go to a temporary file in the destination directory, which is
// fsynced, renamed over name, and the directory is fsynced. Readers therefore
// see either no file or the whole file.
//
// Files are content-addressed, so when name already exists with the same
// size Write succeeds without reading r; an existing file of another size is
// an error wrapping fs.ErrExist. If r yields fewer or more than size bytes,
// or ctx is cancelled mid-copy, Write fails and leaves no file behind. A full
// disk surfaces as an error naming the file and the repository's root
// that wraps syscall.ENOSPC.
//
// Cancellation is checked between reads: a Read that blocks forever is not
// interrupted.
func (b *Backend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	commit, _, err := b.Stage(ctx, name, r, size)
	if err != nil {
		return err
	}
	return commit(ctx)
}

// Stage is Write in two steps (repo.Stager): it writes and fsyncs the bytes
// under a temporary name that readers and List never see, and returns
// commit, which renames the file to name and fsyncs the directory (the
// file is visible and durable when it returns), and abort, which removes
// the temporary file (a no-op after commit). One of the two must be
// called. A writer that must make a file visible only after others are
// durable (a WAL record after its packs and index file) stages it while
// those are written and commits it after them: the file's own data write
// and fsync are off that chain, what readers can see after a crash is
// unchanged (a temporary file left behind is what an interrupted Write
// leaves too).
func (b *Backend) Stage(ctx context.Context, name string, r io.Reader, size int64) (commit func(context.Context) error, abort func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	defer func() {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w (the file system of %s is full)", err, b.root)
		}
	}()
	p, err := b.path(name)
	if err != nil {
		return nil, nil, err
	}
	if size < 0 {
		return nil, nil, fmt.Errorf("local backend: write %s: negative size %d", name, size)
	}
	if done, err := existing(p, name, size); done || err != nil {
		return func(context.Context) error { return nil }, func() {}, err
	}
	dir := filepath.Dir(p)
	if err := b.mkdirAll(dir); err != nil {
		return nil, nil, fmt.Errorf("local backend: write %s: %w", name, err)
	}

	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return nil, nil, fmt.Errorf("local backend: write %s: create temporary file: %w", name, unwrapPath(err))
	}
	tmpName := tmp.Name()
	staged := false
	defer func() {
		if !staged {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()

	// Large files (packs) go around the page cache: nobody reads a pack
	// right after writing it, and the copy into kernel pages cost more
	// system CPU than sealing the pack did.
	var w io.Writer = tmp
	var dw *directio.Writer
	if size >= directio.MinSize {
		dw = directio.NewWriter(tmp)
		w = dw
	}
	if br, ok := r.(*bytes.Reader); ok && int64(br.Len()) == size {
		// One Write of the whole slice: a pack in an aligned buffer
		// (directio.Alloc) goes to the file without another copy.
		_, err = br.WriteTo(w)
		err = unwrapPath(err)
	} else {
		err = copyExact(ctx, w, r, size)
	}
	if dw != nil {
		if cerr := dw.Close(); err == nil && cerr != nil {
			err = unwrapPath(cerr)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("local backend: write %s: %w", name, err)
	}
	if err := tmp.Chmod(fileMode); err != nil {
		return nil, nil, fmt.Errorf("local backend: write %s: %w", name, unwrapPath(err))
	}
	if err := b.ring.sync(tmp); err != nil {
		return nil, nil, fmt.Errorf("local backend: write %s: fsync: %w", name, unwrapPath(err))
	}
	if err := tmp.Close(); err != nil {
		return nil, nil, fmt.Errorf("local backend: write %s: close: %w", name, unwrapPath(err))
	}
	staged = true
	var once sync.Once // the first of commit and abort
	abort = func() {
		once.Do(func() { _ = os.Remove(tmpName) })
	}
	commit = func(ctx context.Context) (err error) {
		defer func() {
			if errors.Is(err, syscall.ENOSPC) {
				err = fmt.Errorf("%w (the file system of %s is full)", err, b.root)
			}
		}()
		renamed := false
		once.Do(func() {
			// Last look at ctx: after the rename the write is committed.
			if err = ctx.Err(); err != nil {
				_ = os.Remove(tmpName)
				err = fmt.Errorf("local backend: write %s: %w", name, err)
				return
			}
			if err = os.Rename(tmpName, p); err != nil {
				_ = os.Remove(tmpName)
				err = fmt.Errorf("local backend: write %s: rename: %w", name, unwrapLink(err))
				return
			}
			renamed = true
		})
		if err != nil {
			return err
		}
		if !renamed {
			return fmt.Errorf("local backend: write %s: committed or aborted already", name)
		}
		if err := b.syncDir(dir); err != nil {
			return fmt.Errorf("local backend: write %s: fsync directory: %w", name, err)
		}
		return nil
	}
	return commit, abort, nil
}

// existing reports whether p already holds a file of the expected size (done),
// or an error when it holds something else.
func existing(p, name string, size int64) (done bool, err error) {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case errors.Is(err, notDir):
		// A parent is a file; let mkdirAll report it.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("local backend: write %s: %w", name, unwrapPath(err))
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("local backend: write %s: exists and is not a regular file: %w", name, fs.ErrExist)
	case fi.Size() != size:
		return false, fmt.Errorf("local backend: write %s: exists with size %d, not %d: %w", name, fi.Size(), size, fs.ErrExist)
	}
	return true, nil
}

// copyExact copies exactly size bytes from r to w, failing on a short or
// long source and checking ctx before every read.
func copyExact(ctx context.Context, w io.Writer, r io.Reader, size int64) error {
	buf := make([]byte, copyBufSize)
	// One byte more than expected, to detect a source that is too long.
	src := io.LimitReader(&ctxReader{ctx: ctx, r: r}, size+1)
	n, err := io.CopyBuffer(w, src, buf)
	if err != nil {
		return unwrapPath(err)
	}
	if n != size {
		if n > size {
			return fmt.Errorf("source has more than the declared %d bytes", size)
		}
		return fmt.Errorf("source ended after %d of the declared %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// mkdirAll creates dir and its missing parents below the root, fsyncing the
// parent of each directory it creates so the new entries survive a crash.
func (b *Backend) mkdirAll(dir string) error {
	rel, err := filepath.Rel(b.root, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := b.root
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		parent := cur
		cur = filepath.Join(cur, c)
		err := os.Mkdir(cur, dirMode)
		switch {
		case err == nil:
			if err := b.syncDir(parent); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			// Concurrent writers create the same directories; that is fine,
			// but a file in the way is not.
			fi, serr := os.Stat(cur)
			if serr != nil {
				return serr
			}
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", cur)
			}
		default:
			return err
		}
	}
	return nil
}

func unwrapLink(err error) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
