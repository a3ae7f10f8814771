package local

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// allFiles returns every entry (files and temp files, not directories) on
// disk under the repository, so tests see what List would hide.
func allFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyExact must surface ENOSPC so callers can tell a full disk from a bug.
func TestCopyExactDiskFull(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	defer f.Close()
	err = copyExact(context.Background(), f, strings.NewReader("abc"), 3)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
}

// TestWriteDiskFull fills a real, tiny tmpfs. It needs root (mount); it is
// skipped elsewhere, TestCopyExactDiskFull covers the unprivileged case.
func TestWriteDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	b, err := Create(filepath.Join(mnt, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(5, 1<<20)
	err = b.Write(context.Background(), "data/ff/big", bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	if want := "local backend: write data/ff/big: no space left on device (the file system of " + b.Location() + " is full)"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if files := allFiles(t, b.Location()); len(files) != 0 {
		t.Fatalf("files left behind on a full disk: %v", files)
	}
	// Space is back: a small write now succeeds.
	if err := b.Write(context.Background(), "data/ff/small", strings.NewReader("ok"), 2); err != nil {
		t.Fatal(err)
	}
}
