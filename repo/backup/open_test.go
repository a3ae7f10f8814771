package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestOpenFile: openFile reads a regular file, and refuses what
// os.OpenFile(O_RDONLY|O_NOFOLLOW) refuses with the same errors: a missing
// file (fs.ErrNotExist, which backup treats as vanished) and a final
// symlink (ELOOP).
func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("memento"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := openFile(p, openFD)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "memento" {
		t.Fatalf("read %q, %v", b, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	_, err = openFile(filepath.Join(dir, "missing"), openFD)
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "open" || err.Error() != "open "+filepath.Join(dir, "missing")+": no such file or directory" {
		t.Fatalf("missing file: %v", err)
	}

	l := filepath.Join(dir, "link")
	if err := os.Symlink(p, l); err != nil {
		t.Fatal(err)
	}
	_, err = openFile(l, openFD)
	_, want := os.OpenFile(l, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if !errors.Is(err, syscall.ELOOP) || want == nil || err.Error() != want.Error() {
		t.Fatalf("symlink: %v, os.OpenFile: %v", err, want)
	}
}

// TestReadDirNames: readDirNames lists what os.File.Readdirnames(-1)
// lists (a directory of more names than one getdents buffer holds, a
// symlink to it, an empty one), without "." and "..", and fails as os.Open and Readdirnames fail,
// with the same error texts: a missing directory, a regular file.
func TestReadDirNames(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 700 { // ~50 bytes a dirent: 35 KB, four 8 KiB buffers
		if err := os.WriteFile(filepath.Join(big, fmt.Sprintf("file-with-a-longish-name-%04d.go", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(big, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link") // a followed symlink (an Engram space's wal/) lists its target
	if err := os.Symlink(big, link); err != nil {
		t.Fatal(err)
	}
	osNames := func(p string) ([]string, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return f.Readdirnames(-1)
	}
	for _, p := range []string{big, link, empty, filepath.Join(dir, "missing"), filepath.Join(big, "file-with-a-longish-name-0001.go")} {
		got, err := readDirNames(p)
		want, werr := osNames(p)
		slices.Sort(got)
		slices.Sort(want)
		if fmt.Sprint(err) != fmt.Sprint(werr) || !slices.Equal(got, want) {
			t.Fatalf("%s: %d names, error %v; os: %d names, error %v", p, len(got), err, len(want), werr)
		}
		if (p == big || p == link) && len(got) != 701 {
			t.Fatalf("%d names in big, want 701", len(got))
		}
	}
}
