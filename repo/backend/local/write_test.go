package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// cancellingReader yields data in small pieces and calls cancel after the
// first piece, like a caller aborting a backup in the middle of a pack.
type cancellingReader struct {
	data   []byte
	cancel func()
	reads  int
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1024)], r.data)
	r.data = r.data[n:]
	r.reads++
	if r.reads == 1 {
		r.cancel()
	}
	return n, nil
}

func TestWriteCancelledMidCopyLeavesNothing(t *testing.T) {
	b := newBackend(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancellingReader{data: randBytes(1, 100000), cancel: cancel}
	err := b.Write(ctx, "data/ab/abc", r, 100000)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write err = %v, want context.Canceled", err)
	}
	if want := "local backend: write data/ab/abc: context canceled"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if r.reads != 1 {
		t.Fatalf("source read %d times after cancel, want 1", r.reads)
	}
	if files := allFiles(t, b.Location()); len(files) != 0 {
		t.Fatalf("files left behind: %v", files)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("network reset")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestWriteSizeMismatchAndSourceErrors(t *testing.T) {
	cases := []struct {
		desc string
		r    io.Reader
		size int64
		want string
	}{
		{"short", strings.NewReader("abc"), 4,
			"local backend: write data/x: source ended after 3 of the declared 4 bytes: unexpected EOF"},
		{"long", strings.NewReader("abcde"), 4,
			"local backend: write data/x: source has more than the declared 4 bytes"},
		{"empty declared 1", strings.NewReader(""), 1,
			"local backend: write data/x: source ended after 0 of the declared 1 bytes: unexpected EOF"},
		{"source error", &failingReader{n: 5000}, 10000,
			"local backend: write data/x: network reset"},
		{"negative size", strings.NewReader(""), -1,
			"local backend: write data/x: negative size -1"},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			b := newBackend(t)
			err := b.Write(context.Background(), "data/x", c.r, c.size)
			if err == nil || err.Error() != c.want {
				t.Fatalf("err\n got %v\nwant %s", err, c.want)
			}
			if files := allFiles(t, b.Location()); len(files) != 0 {
				t.Fatalf("files left behind: %v", files)
			}
		})
	}
}

func TestWriteExisting(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	if err := b.Write(ctx, "data/x", strings.NewReader("first"), 5); err != nil {
		t.Fatal(err)
	}
	// Same size: success, and the file is not rewritten (nor the source read).
	src := strings.NewReader("other")
	if err := b.Write(ctx, "data/x", src, 5); err != nil {
		t.Fatalf("rewrite same size: %v", err)
	}
	if src.Len() != 5 {
		t.Fatalf("source was read although the file exists")
	}
	if got := readAll(t, b, "data/x", 0, -1); string(got) != "first" {
		t.Fatalf("content %q, want the original", got)
	}
	// Another size: an error wrapping fs.ErrExist, file untouched.
	err := b.Write(ctx, "data/x", strings.NewReader("longer"), 6)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want fs.ErrExist", err)
	}
	if want := "local backend: write data/x: exists with size 5, not 6: file already exists"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if got := readAll(t, b, "data/x", 0, -1); string(got) != "first" {
		t.Fatalf("content %q, want the original", got)
	}
	// A directory in the way.
	if err := b.Write(ctx, "data/d/f", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, "data/d", strings.NewReader("x"), 1); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("write over a directory: %v", err)
	}
	// A file in the way of a parent directory.
	err = b.Write(ctx, "data/x/child", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("write under a file: %v", err)
	}
}

func TestConcurrentWritersSameName(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	data := randBytes(3, 2<<20)
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Write(ctx, "data/ab/same", bytes.NewReader(data), int64(len(data)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if !bytes.Equal(readAll(t, b, "data/ab/same", 0, -1), data) {
		t.Fatal("content differs")
	}
	if files := allFiles(t, b.Location()); len(files) != 1 || files[0] != "data/ab/same" {
		t.Fatalf("files on disk: %v", files)
	}
}

func TestConcurrentWritersNewDirectories(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("data/%02x/f%d", i%4, i)
			errs <- b.Write(ctx, name, strings.NewReader(name), int64(len(name)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	n := 0
	if err := b.List(ctx, "data", func(name string, size int64) error {
		n++
		if size != int64(len(name)) {
			t.Errorf("%s: size %d", name, size)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 64 {
		t.Fatalf("listed %d files, want 64", n)
	}
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
	if want := "local backend: write data/ff/big: no space left on device"; err.Error() != want {
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
