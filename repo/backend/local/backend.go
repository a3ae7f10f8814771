package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Permissions for what the backend creates. Repository files are immutable
// once written, so they are made read-only; directories stay private to the
// owner because they reveal the repository's shape (sizes, counts).
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o400
)

// Backend stores repository files under one local directory.
type Backend struct {
	root    string       // absolute, cleaned
	handles *handleCache // open packs (handles.go); emptied by Close
	ring    *syncRing    // fsyncs (ring_linux.go); closed by Close
	// afterDirSync, when set (by tests), is called with each directory
	// fsynced and the fsync's result.
	afterDirSync func(dir string, err error)
}

// syncDir fsyncs dir (syncDir in sync_*.go) and tells afterDirSync.
func (b *Backend) syncDir(dir string) error {
	err := syncDir(b.ring, dir)
	if b.afterDirSync != nil {
		b.afterDirSync(dir, err)
	}
	return err
}

// Open returns a Backend on an existing repository directory. It fails with
// an error wrapping fs.ErrNotExist when dir is missing, so that a typo in
// --repo is reported instead of silently creating a new, empty repository.
func Open(dir string) (*Backend, error) {
	root, err := absDir(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("local backend: repository directory %s does not exist: %w", root, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("local backend: open repository directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local backend: repository path %s is not a directory", root)
	}
	return backendAt(root), nil
}

// Create makes dir (and its parents) and returns a Backend on it. It refuses
// a directory that exists and is not empty (error wraps fs.ErrExist), so that
// `init` never mixes a new repository into someone else's files.
func Create(dir string) (*Backend, error) {
	root, err := absDir(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, dirMode); err != nil {
		return nil, fmt.Errorf("local backend: create repository directory: %w", err)
	}
	empty, err := isEmptyDir(root)
	if err != nil {
		return nil, fmt.Errorf("local backend: create repository directory %s: %w", root, err)
	}
	if !empty {
		return nil, fmt.Errorf("local backend: repository directory %s is not empty: %w", root, fs.ErrExist)
	}
	if err := syncDir(nil, filepath.Dir(root)); err != nil {
		return nil, fmt.Errorf("local backend: create repository directory %s: %w", root, err)
	}
	return backendAt(root), nil
}

func backendAt(root string) *Backend {
	return &Backend{root: root, handles: newHandleCache(maxHandles), ring: newSyncRing()}
}

// Close releases the pack files the Backend keeps open between reads (at
// most maxHandles): those no reader uses are closed now, those still being
// read when their last reader is closed. The Backend stays usable: after
// Close every pack is opened for its read and closed with its reader, so
// nothing stays open. Whoever opens a Backend closes it when done with it
// (a command when it ends, a mount after it is unmounted). Close is
// idempotent and always returns nil.
func (b *Backend) Close() error {
	b.handles.close()
	b.ring.close()
	return nil
}

// Location returns the absolute path of the repository directory.
func (b *Backend) Location() string { return b.root }

// PackWriters is how many packs a repository writes at once here
// (repo.PackWriters), for all its spaces together: two, one writing its
// data while the other fsyncs and renames. More only add buffers: the
// device is the bound (docs/benchmarks.md, "Issue 18, session 16: the
// first backup's pack buffers").
func (b *Backend) PackWriters() int { return 2 }

// Stat returns the size of the file name. The error wraps fs.ErrNotExist when
// the file is absent.
func (b *Backend) Stat(ctx context.Context, name string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p, err := b.path(name)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0, fmt.Errorf("local backend: stat %s: %w", name, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("local backend: stat %s: not a regular file", name)
	}
	return fi.Size(), nil
}

// Delete removes the file name and fsyncs its directory, so that the removal
// survives a power cut (a stale lock that came back would block the next
// prune; a deleted pack that came back would be harmless garbage, a deleted
// index file that came back would describe packs that are gone). A file that
// is already absent is not an error: deleting is idempotent so an
// interrupted prune can simply rerun.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("local backend: delete %s: %w", name, unwrapPath(err))
	}
	if err := b.syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("local backend: delete %s: fsync directory: %w", name, err)
	}
	return nil
}

// path validates name and returns its absolute path under the root.
func (b *Backend) path(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	return filepath.Join(b.root, filepath.FromSlash(name)), nil
}

func absDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("local backend: empty repository path")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("local backend: repository path %q: %w", dir, err)
	}
	return root, nil
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// unwrapPath strips the *fs.PathError layer (which names the absolute path)
// so that messages name the repository-relative file once, not twice.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
