package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
