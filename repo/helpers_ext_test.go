package repo_test

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// File system helpers of the external tests (package repo_test); the test
// repository, tree digests and data are repotest's.

// flip inverts one byte of a repository file in place.
func flip(t *testing.T, p string, off int64) {
	t.Helper()
	chmod(t, p, 0o600)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x55
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func chmod(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func lstat(t testing.TB, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func touch(t testing.TB, p string, tm time.Time, symlink bool) {
	t.Helper()
	var err error
	if symlink {
		err = lchtimes(p, tm)
	} else {
		err = os.Chtimes(p, tm, tm)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func lchtimes(p string, tm time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}
