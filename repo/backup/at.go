package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo"
)

// The walk looks up each entry of a directory it listed relative to the
// directory's descriptor, kept open while its entries are walked
// (saveItems): fstatat, listxattrat and openat of the entry's name instead
// of lstat, llistxattr and open of its full path, each of which walked every
// component of the path again (on a tree of 100,000 tiny files in 68,000
// directories, a fifth of the backup's system time went to path walks:
// docs/benchmarks.md, "Issue 18, session 25"). The results are the same
// values, errors included (naming the full path), as the calls by path.

// entry is where a walked item is looked up: its name in the directory
// open as dir, or (dir < 0: a source, a redirected path, a selection's
// entry) its full path.
type entry struct {
	dir        int
	name, path string
	// noAt, if not nil, is set once listxattrat(2) failed with ENOSYS or
	// EPERM (Linux before 6.13, a seccomp filter): llistxattr by path
	// from then on. The archiver owns it (one backup's walk).
	noAt *atomic.Bool
}

// lstat is os.Lstat(e.path), relative to e.dir if it is open.
func (e entry) lstat() (fs.FileInfo, error) {
	if e.dir < 0 {
		return os.Lstat(e.path)
	}
	fi := &statInfo{name: e.name}
	for {
		err := unix.Fstatat(e.dir, e.name, (*unix.Stat_t)(unsafe.Pointer(&fi.sys)), unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "lstat", Path: e.path, Err: err}
		}
		return fi, nil
	}
}

// readlink is os.Readlink(e.path), relative to e.dir if it is open.
func (e entry) readlink() (string, error) {
	if e.dir < 0 {
		return os.Readlink(e.path)
	}
	b := make([]byte, 128)
	for {
		k, err := unix.Readlinkat(e.dir, e.name, b)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return "", &fs.PathError{Op: "readlink", Path: e.path, Err: err}
		case k < len(b):
			return string(b[:k]), nil
		}
		b = make([]byte, 2*len(b)) // the target may be longer: read again
	}
}

// openFD is openFD(e.path), relative to e.dir if it is open.
func (e entry) openFD() (int, error) {
	if e.dir < 0 {
		return openFD(e.path)
	}
	return openAt(e.dir, e.name, e.path, fileFlags)
}

// unix.Stat_t and syscall.Stat_t are the same struct (lstat fills one
// through the other): a size that differs fails the build.
const (
	_ = uint(unsafe.Sizeof(unix.Stat_t{}) - unsafe.Sizeof(syscall.Stat_t{}))
	_ = uint(unsafe.Sizeof(syscall.Stat_t{}) - unsafe.Sizeof(unix.Stat_t{}))
)

// listxattr is llistxattr(e.path, buf): the names of e's extended
// attributes, not following a symlink, by listxattrat relative to e.dir
// if it is open. Any error but ERANGE is left to llistxattr by path, whose
// result and error then are today's.
func (e entry) listxattr(buf []byte) (int, error) {
	if e.dir >= 0 && (e.noAt == nil || !e.noAt.Load()) {
		if name, err := unix.BytePtrFromString(e.name); err == nil {
			var p unsafe.Pointer
			if len(buf) > 0 {
				p = unsafe.Pointer(&buf[0])
			}
			n, _, errno := unix.Syscall6(unix.SYS_LISTXATTRAT, uintptr(e.dir), uintptr(unsafe.Pointer(name)),
				unix.AT_SYMLINK_NOFOLLOW, uintptr(p), uintptr(len(buf)), 0)
			switch errno {
			case 0:
				return int(n), nil
			case unix.ERANGE:
				return 0, errno
			case unix.ENOSYS, unix.EPERM:
				if e.noAt != nil {
					e.noAt.Store(true)
				}
			}
		}
	}
	return unix.Llistxattr(e.path, buf)
}

// statInfo is the fs.FileInfo of an fstatat, as os.Lstat makes it
// (os.fillFileStatFromSys): Sys is the *syscall.Stat_t.
type statInfo struct {
	name string
	sys  syscall.Stat_t
}

func (fi *statInfo) Name() string       { return filepath.Base(fi.name) }
func (fi *statInfo) Size() int64        { return fi.sys.Size }
func (fi *statInfo) ModTime() time.Time { return time.Unix(fi.sys.Mtim.Unix()) }
func (fi *statInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *statInfo) Sys() any           { return &fi.sys }

func (fi *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.sys.Mode & 0o777)
	switch fi.sys.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.sys.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.sys.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.sys.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// dirID is a directory's device and inode.
type dirID struct{ dev, ino uint64 }

// statID is fi's device and inode (zero without a Stat_t).
func statID(fi fs.FileInfo) dirID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return dirID{dev: uint64(st.Dev), ino: st.Ino}
	}
	return dirID{}
}

// listDir lists it, a subdirectory of a walked directory (crel in the
// snapshot), by its full path (readDirItems), and makes sure that what it
// lists is in the tree. The walk closed the parent's descriptor before
// its subdirectories, so the subdirectory, or a directory above it, may
// have been replaced by a symlink since the walk looked it up, and an open
// by path would follow it out of the tree (session 26's review: the
// snapshot stored the outside directory's files under the tree's name).
// So a directory not read through a symlink on purpose (a.follow) is
// opened with O_NOFOLLOW, and the directory opened must have the device
// and inode its lookup found (it.id), or else its parent must still be
// the directory the walk listed (it.parent, looked up by path again): the
// entry is then the tree's, with a file system mounted on it by the open
// (an automount point) or another directory renamed into its place.
// Else the directory opened must be the one reached from the backup's root
// through directories only (reachedFromRoot): a file system that numbers
// its directories anew when they leave the cache (an overlay whose layers
// are different file systems, a FAT or FUSE one) renumbers it and its
// parent under memory pressure, and a directory above it may have been
// replaced by another real one. Otherwise the backup fails naming it, and
// the next run reads it.
func (a *archiver) listDir(it item, crel string) ([]item, int, error) {
	flags := dirFlags
	if !it.redirected && !a.follow[crel] {
		flags |= syscall.O_NOFOLLOW
	}
	children, fd, err := readDirItems(it, a.batches, flags)
	if errors.Is(err, syscall.ELOOP) && flags&syscall.O_NOFOLLOW != 0 {
		return nil, -1, fmt.Errorf("backup %s: the directory was replaced during the backup by a symlink, which is not followed out of the tree; run the backup again: %w", it.path, syscall.ELOOP)
	}
	if err != nil || fd < 0 || it.redirected || it.id == (dirID{}) {
		return children, fd, err
	}
	got, err := fstatID(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, -1, fmt.Errorf("backup %s: %w", it.path, &fs.PathError{Op: "fstat", Path: it.path, Err: err})
	}
	if got == it.id || it.parent == (dirID{}) {
		return children, fd, nil // the directory looked up, or a source: what its path names
	}
	if fi, err := os.Stat(filepath.Dir(it.path)); err == nil && statID(fi) == it.parent {
		return children, fd, nil
	}
	if a.reachedFromRoot(it, got) {
		return children, fd, nil
	}
	syscall.Close(fd)
	return nil, -1, fmt.Errorf("backup %s: the directory was replaced during the backup, or a directory above it was (by a symlink out of the tree?): it is not the directory listed (device %d inode %d, now device %d inode %d); run the backup again",
		it.path, it.id.dev, it.id.ino, got.dev, got.ino)
}

// reachedFromRoot reports whether the directory open with identity want is
// the one found at it.path by opening its path's components one by one from
// the root of the backup it is below (a.roots), none through a symlink
// except one followed on purpose (a.follow): it is then in the tree, whatever
// its device and inode were when its parent was walked. Both are open while
// compared, so neither can be renumbered in between. A directory below no
// root (a redirected one) is not.
func (a *archiver) reachedFromRoot(it item, want dirID) bool {
	for _, r := range a.roots {
		rest, ok := strings.CutPrefix(it.path, strings.TrimSuffix(r.path, "/")+"/") // "/": a backup of the root
		if !ok || rest == "" {
			continue
		}
		fd, err := openFlags(r.path, dirFlags|syscall.O_DIRECTORY)
		if err != nil {
			continue
		}
		rel := r.name
		for _, c := range strings.Split(rest, "/") {
			rel = repo.JoinRel(rel, c)
			flags := dirFlags | syscall.O_DIRECTORY | syscall.O_NOFOLLOW
			if a.follow[rel] {
				flags &^= syscall.O_NOFOLLOW
			}
			next, err := openAt(fd, c, it.path, flags)
			syscall.Close(fd)
			if fd = next; err != nil {
				break
			}
		}
		if fd < 0 {
			continue
		}
		got, err := fstatID(fd)
		syscall.Close(fd)
		if err == nil && got == want {
			return true
		}
	}
	return false
}

// fstatID is the device and inode of the file open as fd (fstat, retried
// on EINTR).
func fstatID(fd int) (dirID, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Fstat(fd, &st)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return dirID{}, err
		}
		return dirID{dev: uint64(st.Dev), ino: st.Ino}, nil
	}
}
