package repotest

import (
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FlipByte inverts bits of the byte at off of the file p in place (XOR
// 0x55), making the file writable first: repository files are read-only.
func FlipByte(t testing.TB, p string, off int64) {
	t.Helper()
	Chmod(t, p, 0o600)
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

// Chmod sets p's mode, failing the test on error.
func Chmod(t testing.TB, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// Lstat returns p's FileInfo (of a link itself, not its target), failing the
// test on error.
func Lstat(t testing.TB, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// Mkdir makes the directory p and its missing parents with perm, failing
// the test on error.
func Mkdir(t testing.TB, p string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, perm); err != nil {
		t.Fatal(err)
	}
}

// Touch sets p's access and modification times to tm; with symlink, those
// of the link itself (Lchtimes). It fails the test on error.
func Touch(t testing.TB, p string, tm time.Time, symlink bool) {
	t.Helper()
	var err error
	if symlink {
		err = Lchtimes(p, tm)
	} else {
		err = os.Chtimes(p, tm, tm)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Lchtimes sets the access and modification times of p without following
// a symbolic link, which os.Chtimes cannot.
func Lchtimes(p string, tm time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// QuietLogger is a logger that writes nothing, for code under test that
// logs.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// RepoFiles lists the files of one kind (a top directory such as
// repo.DirData; "" = all) of the repository in dir, relative to dir with
// slashes, sorted, hidden (temporary) files left out.
func RepoFiles(t testing.TB, dir, kind string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, kind), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}
