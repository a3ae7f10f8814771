package backup

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"memento/chunk"
)

// openFile opens a regular file to back up, not following a final symlink,
// like os.OpenFile(path, O_RDONLY|O_NOFOLLOW) but in two system calls
// instead of six: os.OpenFile tries to register every file with the
// runtime's poller (fcntl to set non-blocking, epoll_ctl, which fails for
// regular files, fcntl to set it back), which cost a first backup of Go's
// source tree (11,478 files) a tenth of its system time. Errors are the
// same *fs.PathError os.OpenFile returns. open is openFD, or a backup's
// batchReader.open (which waits for the descriptors of batches).
func openFile(path string, open func(string) (int, error)) (*os.File, error) {
	fd, err := open(path)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openFD is openFile returning the bare descriptor, for a small file read
// whole (readFD) and closed with syscall.Close: os.NewFile costs one more
// system call (fcntl, to learn whether the descriptor is non-blocking).
func openFD(path string) (int, error) {
	return openFlags(path, fileFlags)
}

// fileFlags are openFD's, dirFlags readDirNames'.
const (
	fileFlags = syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC
	dirFlags  = syscall.O_RDONLY | syscall.O_CLOEXEC // a followed symlink's directory too
)

// openFlags is open(2) of path with flags, retried on EINTR; errors are
// *fs.PathError values as os.OpenFile returns.
func openFlags(path string, flags int) (int, error) {
	return openAt(unix.AT_FDCWD, path, path, flags)
}

// openAt is openat(2) of name in the directory open as dir, with flags,
// retried on EINTR; errors are *fs.PathError values naming path.
func openAt(dir int, name, path string, flags int) (int, error) {
	for {
		fd, err := syscall.Openat(dir, name, flags, 0)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// readFD reads fd from its start into b[:0] until the end of the file or
// until b holds limit bytes (full: the file may go on). Errors are the
// *fs.PathError os.File.Read returns, naming path.
func readFD(fd int, path string, b []byte, limit int) (_ []byte, full bool, _ error) {
	b = b[:0]
	for len(b) < limit {
		n, err := syscall.Read(fd, b[len(b):limit])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return b, false, &fs.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return b, false, nil
		}
		b = b[:len(b)+n]
	}
	return b, true, nil
}

// dirBufSize is the getdents buffer of readDirNames, os.File's own size.
const dirBufSize = 8 << 10

// readDirNames returns the names in directory path (not "." and ".."),
// unsorted, as os.Open and File.Readdirnames(-1) do, without their four
// fcntl calls and an epoll_ctl per directory (os.Open makes the descriptor
// non-blocking to try the poller, which refuses directories, and sets it
// back): 5,600 of the system calls of a first backup of Go's src/, whose
// 1,400 directories are listed once each. Errors are the same
// *fs.PathError values ("open", "readdirent").
func readDirNames(path string) ([]string, error) {
	names, fd, err := readDirNamesOpen(path, dirFlags, openFlags)
	if err == nil {
		syscall.Close(fd)
	}
	return names, err
}

// readDirNamesOpen is readDirNames opening path with open (a backup's
// batchReader.openFlags) and flags (dirFlags, or with O_NOFOLLOW), and
// leaving the directory open: it returns its descriptor too, for the
// caller to close (on error, none is open).
func readDirNamesOpen(path string, flags int, open func(string, int) (int, error)) ([]string, int, error) {
	fd, err := open(path, flags)
	if err != nil {
		return nil, -1, err
	}
	b := chunk.Buffer(dirBufSize)
	defer chunk.PutBuffer(b)
	buf := (*b)[:dirBufSize]
	var names []string
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			syscall.Close(fd)
			return nil, -1, &fs.PathError{Op: "readdirent", Path: path, Err: err}
		}
		if n <= 0 {
			return names, fd, nil
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
}
