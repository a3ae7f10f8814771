package backup

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	f, err := openFile(p)
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

	_, err = openFile(filepath.Join(dir, "missing"))
	var pe *fs.PathError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &pe) || pe.Op != "open" || err.Error() != "open "+filepath.Join(dir, "missing")+": no such file or directory" {
		t.Fatalf("missing file: %v", err)
	}

	l := filepath.Join(dir, "link")
	if err := os.Symlink(p, l); err != nil {
		t.Fatal(err)
	}
	_, err = openFile(l)
	_, want := os.OpenFile(l, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if !errors.Is(err, syscall.ELOOP) || want == nil || err.Error() != want.Error() {
		t.Fatalf("symlink: %v, os.OpenFile: %v", err, want)
	}
}
