package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// reserveName is the file in the repository root that holds space in
// reserve for a full file system. Its name starts with the temporary-file
// prefix, so List, replication and `rsync --exclude '.tmp-*'` skip it and no
// caller can name it.
const reserveName = tmpPrefix + "reserve"

// ReserveSize is how much space the reserve holds: room for the lock, audit
// records and index files with which forget and prune start freeing space
// on a full file system (docs/repository-format.md, "Locks").
const ReserveSize = 4 << 20

// EnsureReserve creates the reserve file when it is missing or short. Its
// blocks are written (zeros, not a sparse file), fsynced, renamed into place
// and the directory fsynced, so the space is really taken. A full file
// system fails with an error wrapping syscall.ENOSPC and leaves nothing.
func (b *Backend) EnsureReserve(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := filepath.Join(b.root, reserveName)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Size() >= ReserveSize {
		return nil
	}
	tmp, err := os.CreateTemp(b.root, tmpPrefix+"reserve-*")
	if err != nil {
		return fmt.Errorf("local backend: create reserve: %w", unwrapPath(err))
	}
	tmpName := tmp.Name()
	zeros := make([]byte, 1<<20)
	for n := 0; n < ReserveSize && err == nil; n += len(zeros) {
		_, err = tmp.Write(zeros)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmpName, p)
	}
	if err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("local backend: create reserve: %w", unwrapLink(unwrapPath(err)))
	}
	if err := b.syncDir(b.root); err != nil {
		return fmt.Errorf("local backend: create reserve: fsync directory: %w", err)
	}
	return nil
}

// ReleaseReserve deletes the reserve file, durably, and returns its size
// (0 when there was none).
func (b *Backend) ReleaseReserve(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p := filepath.Join(b.root, reserveName)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("local backend: release reserve: %w", unwrapPath(err))
	}
	if err := os.Remove(p); err != nil {
		return 0, fmt.Errorf("local backend: release reserve: %w", unwrapPath(err))
	}
	if err := b.syncDir(b.root); err != nil {
		return 0, fmt.Errorf("local backend: release reserve: fsync directory: %w", err)
	}
	return fi.Size(), nil
}
