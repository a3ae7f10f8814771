package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// targetFile is dump --target's output: written under a temporary name
// beside the final one (".NAME.memento-*", mode 0666 less the umask) and
// put in place by commit only when complete and fsynced, so a dump that
// fails (damaged data, Ctrl-C, full disk) leaves no file and an existing
// one as it was. Without replace, the final name is taken with link(2),
// which fails if the name exists by then, so nothing is overwritten even
// by a file made while the dump ran.
type targetFile struct {
	*os.File
	tmp, final string
	replace    bool
}

// createTarget checks that final can be written (its directory exists, it
// is not a directory, it does not exist unless replace) and opens the
// temporary file. Bad targets are usage errors naming the path.
func createTarget(final string, replace bool) (*targetFile, error) {
	if fi, err := os.Lstat(final); err == nil {
		if fi.IsDir() {
			return nil, usagef("--target %s is a directory: give a file name (a directory is dumped as one archive file)", final)
		}
		if !replace {
			return nil, usagef("--target %s exists: give --force to replace it", final)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--target %s: %w", final, err)
	}
	dir := filepath.Dir(final)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, usagef("--target %s: directory %s does not exist", final, dir)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "."+filepath.Base(final)+".memento-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, fmt.Errorf("--target %s: %w", final, err)
	}
	return &targetFile{File: f, tmp: tmp, final: final, replace: replace}, nil
}

// commit makes the file durable and puts it at its final name.
func (t *targetFile) commit() error {
	if err := t.Sync(); err != nil {
		t.abort()
		return fmt.Errorf("--target %s: %w", t.final, err)
	}
	if err := t.Close(); err != nil {
		t.abort()
		return fmt.Errorf("--target %s: %w", t.final, err)
	}
	var err error
	if t.replace {
		err = os.Rename(t.tmp, t.final)
	} else if err = os.Link(t.tmp, t.final); err == nil || errors.Is(err, fs.ErrExist) {
		_ = os.Remove(t.tmp)
	} else if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) {
		// A file system without hard links: check, then rename.
		if _, lerr := os.Lstat(t.final); lerr == nil {
			err = fs.ErrExist
		} else {
			err = os.Rename(t.tmp, t.final)
		}
	}
	if errors.Is(err, fs.ErrExist) {
		_ = os.Remove(t.tmp)
		return usagef("--target %s exists (made while the dump ran): give --force to replace it", t.final)
	}
	if err != nil {
		_ = os.Remove(t.tmp)
		return fmt.Errorf("--target %s: %w", t.final, err)
	}
	d, err := os.Open(filepath.Dir(t.final))
	if err != nil {
		return fmt.Errorf("--target %s: sync its directory: %w", t.final, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("--target %s: sync its directory: %w", t.final, err)
	}
	return nil
}

// abort removes the temporary file; the final name is untouched.
func (t *targetFile) abort() {
	_ = t.Close()
	_ = os.Remove(t.tmp)
}
