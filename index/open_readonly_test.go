package index

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenAndBindOfAReadyIndexWriteNothing: opening an index that has its
// layout and binding it to its own repository commits no transaction (a
// commit rewrites a meta page and costs two fdatasyncs on every command),
// while a fresh file still gets its layout and binding, and a foreign
// binding is still refused.
func TestOpenAndBindOfAReadyIndexWriteNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Bind("repo-1"); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		ix, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := ix.Bind("repo-1"); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("opening and binding a ready index changed the file (a transaction was committed)")
	}
	if id, err := ix.RepoID(); err != nil || id != "repo-1" {
		t.Fatalf("RepoID = %q, %v", id, err)
	}
	if err := ix.Bind("repo-2"); !errors.Is(err, ErrForeign) {
		t.Fatalf("Bind to another repository: %v, want ErrForeign", err)
	}
	// A file of zero bytes (a crash before bbolt wrote it) gets its layout.
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ix2, err := Open(empty)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix2.Bind("repo-1"); err != nil {
		t.Fatal(err)
	}
}
