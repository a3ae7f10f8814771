package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A restore builds its result in a staging directory beside the target
// (".<name>.restore-<n>" for a snapshot, ".<space>.pitr-<n>" for a point in
// time) and renames it into place only when it is complete and on disk.
//
// Beside the staging directory lies its owner file, the same name plus
// ".owner". It is created before the directory, holds the restore's pid and
// host for the operator, and stays locked (flock) while the restore runs;
// the kernel drops the lock when the process ends, however it ends. A
// restore that was killed, or a machine that lost power, leaves both behind:
// the next restore into the same parent removes a staging directory whose
// owner file it can lock (no process holds it: the restore that made it is
// gone) and says so in one line. Nothing else is ever removed: not a
// directory without an owner file (made by an older memento), not one whose
// owner file cannot be locked, never a *.pre-restore-* safety copy.

const stagingOwnerSuffix = ".owner"

// stagingKinds are the infixes of memento's staging directory names.
var stagingKinds = []string{".restore-", ".pitr-"}

// staging is a restore's staging directory.
type staging struct {
	dir   string   // the staging directory, mode 0700
	owner *os.File // its owner file, locked while the restore runs
}

// newStaging removes stale staging directories in parent, then creates a
// staging directory there named prefix<n> (prefix is "."+name+kind, kind one
// of stagingKinds) and its owner file.
func newStaging(parent, prefix string, log *slog.Logger) (*staging, error) {
	removeStaleStaging(parent, log)
	f, err := os.CreateTemp(parent, prefix+"*"+stagingOwnerSuffix)
	if err != nil {
		return nil, err
	}
	// A file system without flock: the directory is never deemed stale.
	_ = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	host, _ := os.Hostname()
	_, err = fmt.Fprintf(f, "pid %d\nhost %s\n", os.Getpid(), host)
	s := &staging{dir: strings.TrimSuffix(f.Name(), stagingOwnerSuffix), owner: f}
	if err == nil {
		err = os.Mkdir(s.dir, 0o700)
	}
	if err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

// sync puts everything written below the staging directory on disk, and
// with it every directory created on the way to it: one syncfs(2) of the
// file system holding it (measured faster than an fsync of each file and
// directory: BenchmarkStagingSync, BenchmarkRestore). The owner file was
// opened before anything was written, so syncfs reports any writeback error
// since (Linux 5.8 and later).
func (s *staging) sync() error {
	if err := unix.Syncfs(int(s.owner.Fd())); err != nil {
		return fmt.Errorf("restore %s: sync to disk: %w", s.dir, err)
	}
	return nil
}

// release removes the owner file, once the staging directory is renamed
// into place or removed. It may be called again.
func (s *staging) release() {
	if s.owner == nil {
		return
	}
	os.Remove(s.owner.Name())
	s.owner.Close()
	s.owner = nil
}

// abort removes the staging directory and its owner file.
func (s *staging) abort() {
	removeTree(s.dir)
	s.release()
}

// removeStaleStaging removes the staging directories in parent whose owner
// file no process holds locked, and owner files left without a directory
// (a restore killed right after its swap).
func removeStaleStaging(parent string, log *slog.Logger) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if name := e.Name(); e.Type().IsRegular() && isStagingOwner(name) {
			removeIfStale(filepath.Join(parent, name), log)
		}
	}
}

// isStagingOwner reports whether name is an owner file of memento's naming.
func isStagingOwner(name string) bool {
	if !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, stagingOwnerSuffix) {
		return false
	}
	for _, k := range stagingKinds {
		if strings.Contains(name, k) {
			return true
		}
	}
	return false
}

func removeIfStale(owner string, log *slog.Logger) {
	f, err := os.OpenFile(owner, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer f.Close()
	// Read before locking. Empty: a restore between creating and filling
	// it. Not "pid N...": not an owner file of ours. Our own pid:
	// a concurrent restore of this process, which must not be touched
	// where flock is emulated by per-process locks (NFS): taking and
	// dropping such a lock here would release the other restore's.
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	if !strings.HasPrefix(string(b[:n]), "pid ") || strings.HasPrefix(string(b[:n]), fmt.Sprintf("pid %d\n", os.Getpid())) {
		return
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // its restore is running (or the file system has no flock)
	}
	dir := strings.TrimSuffix(owner, stagingOwnerSuffix)
	if n, _ := f.ReadAt(b, 0); strings.HasSuffix(string(b[:n]), "\n"+movingMark) {
		// An in-place restore, complete and on disk, interrupted
		// while moving its entries into the target: finish it.
		if err := finishMove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot finish moving an interrupted in-place restore into its target", "dir", dir, "err", err)
			return
		}
		log.Warn("finished moving an interrupted in-place restore into its target (it was complete and verified before the interruption)", "target", filepath.Dir(dir))
		os.Remove(owner)
		return
	}
	if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
		if err := removeTree(dir); err != nil {
			log.Warn("cannot remove the staging directory of a restore that did not finish", "dir", dir, "err", err)
			return
		}
		log.Warn("removed the staging directory of a restore that did not finish", "dir", dir)
	}
	os.Remove(owner)
}

// removeTree removes dir and everything below it, making directories
// writable first: a killed restore may have set a directory's mode already.
func removeTree(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	err := os.RemoveAll(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
