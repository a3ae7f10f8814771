package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newBackend(t *testing.T) *Backend {
	t.Helper()
	b, err := Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func readAll(t *testing.T, b *Backend, name string, off, length int64) []byte {
	t.Helper()
	rc, err := b.Open(context.Background(), name, off, length)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestOpenMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := Open(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(missing) err = %v, want fs.ErrNotExist", err)
	}
	want := "local backend: repository directory " + dir + " does not exist: file does not exist"
	if err.Error() != want {
		t.Fatalf("error text\n got %q\nwant %q", err, want)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Open created the directory")
	}
}

func TestOpenFileNotDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(f)
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestCreate(t *testing.T) {
	base := t.TempDir()
	// Missing parents are created.
	b, err := Create(filepath.Join(base, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Location(), filepath.Join(base, "a", "b"); got != want {
		t.Fatalf("Location = %q, want %q", got, want)
	}
	// Existing but empty is fine.
	if _, err := Create(filepath.Join(base, "a", "b")); err != nil {
		t.Fatalf("Create(empty existing): %v", err)
	}
	// Non-empty is refused.
	if _, err := Create(base); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create(non-empty) err = %v, want fs.ErrExist", err)
	}
	// Open of what Create made works and sees the same files.
	ctx := context.Background()
	if err := b.Write(ctx, "config", strings.NewReader("cfg"), 3); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(filepath.Join(base, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, b2, "config", 0, -1); string(got) != "cfg" {
		t.Fatalf("read %q", got)
	}
}

func TestRoundTrip(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	cases := []struct {
		name string
		size int
	}{
		{"config", 0},
		{"keys/k1", 1},
		{"data/ab/ab" + strings.Repeat("0", 62), 4096},
		{"data/cd/cd" + strings.Repeat("1", 62), 3<<20 + 17}, // several copy buffers
		{"snapshots/space-1/x y ü", 100},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := randBytes(uint64(i), c.size)
			if err := b.Write(ctx, c.name, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, b, c.name, 0, -1)
			if sha256.Sum256(got) != sha256.Sum256(data) || len(got) != len(data) {
				t.Fatalf("read back %d bytes differing from the %d written", len(got), len(data))
			}
			size, err := b.Stat(ctx, c.name)
			if err != nil || size != int64(c.size) {
				t.Fatalf("Stat = %d, %v; want %d", size, err, c.size)
			}
			fi, err := os.Stat(filepath.Join(b.Location(), filepath.FromSlash(c.name)))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != fileMode {
				t.Fatalf("mode %v, want %v", fi.Mode().Perm(), fileMode)
			}
		})
	}
}

func TestStatDeleteMissing(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	_, err := b.Stat(ctx, "data/00/0000")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) err = %v", err)
	}
	if want := "local backend: stat data/00/0000: no such file or directory"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if err := b.Delete(ctx, "data/00/0000"); err != nil {
		t.Fatalf("Delete(missing) = %v", err)
	}
	if err := b.Write(ctx, "data/00/0000", strings.NewReader("abc"), 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "data/00/0000"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "data/00/0000"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat after Delete err = %v", err)
	}
	if _, err := b.Open(ctx, "data/00/0000", 0, -1); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after Delete err = %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	b := newBackend(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Write(ctx, "x", strings.NewReader("a"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Write: %v", err)
	}
	if _, err := b.Open(ctx, "x", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: %v", err)
	}
	if _, err := b.Stat(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat: %v", err)
	}
	if err := b.Delete(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete: %v", err)
	}
	if err := b.List(ctx, "", func(string, int64) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v", err)
	}
}
