package index

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
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

// TestOpenBoundCommitsOnce: OpenBound makes a new cache file's layout and
// binding in one transaction (Open then Bind committed two, each two
// fdatasyncs on the way to a first backup's first file); on a ready file it
// commits nothing, binds an unbound one, and refuses a foreign one with
// Bind's error.
func TestOpenBoundCommitsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := OpenBound(path, "repo-1")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := ix.RepoID(); err != nil || id != "repo-1" {
		t.Fatalf("RepoID = %q, %v", id, err)
	}
	var txid int
	if err := ix.view(func(tx *bolt.Tx) error { txid = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	if txid != 2 { // bbolt's new file holds transactions 0 and 1
		t.Errorf("new file at transaction %d after OpenBound, want 2 (one commit)", txid)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBound(path, "repo-1"); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(before, after) {
		t.Errorf("OpenBound of a ready index changed the file (%v)", err)
	}
	_, err = OpenBound(path, "repo-2")
	want := "index " + ix.Path() + `: index file belongs to another repository: it caches repository repo-1, not repo-2 (use another cache file or run "memento index rebuild" to recreate it)`
	if !errors.Is(err, ErrForeign) || err.Error() != want {
		t.Fatalf("OpenBound of another repository's cache: %v, want %q", err, want)
	}
	unbound := filepath.Join(t.TempDir(), "unbound.db")
	if _, err := Open(unbound); err != nil {
		t.Fatal(err)
	}
	ix2, err := OpenBound(unbound, "repo-3")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := ix2.RepoID(); err != nil || id != "repo-3" {
		t.Fatalf("RepoID of an unbound file after OpenBound = %q, %v", id, err)
	}
	if _, err := OpenBound(filepath.Join(t.TempDir(), "x.db"), ""); err == nil {
		t.Error("OpenBound with an empty repository id accepted")
	}
}
