package index

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const hint = ` (run "memento index rebuild" to recreate it)`

func TestVersionMismatch(t *testing.T) {
	ix := openTemp(t)
	db, err := bolt.Open(ix.Path(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte{2}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	want := "index " + ix.Path() + ": index format version mismatch: file has version 2, this memento reads version 1" + hint
	_, err = Open(ix.Path())
	if !errors.Is(err, ErrVersion) || err.Error() != want {
		t.Fatalf("Open:\n got %v\nwant %s", err, want)
	}
	// A handle opened before the change sees it on its next call.
	if _, err := ix.LoadedFiles(); !errors.Is(err, ErrVersion) || err.Error() != want {
		t.Fatalf("LoadedFiles: %v", err)
	}
	// Recreate is the way out.
	ix2, err := Recreate(ix.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix2.LoadedFiles(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptFiles(t *testing.T) {
	cases := []struct {
		desc  string
		make  func(t *testing.T, path string)
		cause string
	}{
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "file of 17000 bytes has no valid bbolt meta page (first: no bbolt magic)"},
		// Truncated files: bbolt would map pages past the end and die of
		// SIGBUS (fatal, not a panic) on the first one it touches.
		{"cut in the first meta page", func(t *testing.T, path string) {
			bigIndex(t, path, 100)
		}, fmt.Sprintf("file of 100 bytes is shorter than its two %d-byte meta pages", os.Getpagesize())},
		{"cut in the first meta's fields", func(t *testing.T, path string) {
			bigIndex(t, path, 40)
		}, "file of 40 bytes has no valid bbolt meta page (first: cut off)"},
		{"cut in the second meta page", func(t *testing.T, path string) {
			bigIndex(t, path, int64(os.Getpagesize())+100)
		}, fmt.Sprintf("file of %d bytes is shorter than its two %d-byte meta pages", os.Getpagesize()+100, os.Getpagesize())},
		{"cut in the data pages", func(t *testing.T, path string) {
			bigIndex(t, path, 40*int64(os.Getpagesize()))
		}, fmt.Sprintf("file of %d bytes is truncated: meta page ", 40*os.Getpagesize())},
		{"foreign bbolt database", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other-app")); return err }); err != nil {
				t.Fatal(err)
			}
		}, "no memento meta bucket"},
		{"version record damaged", func(t *testing.T, path string) {
			ix, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(ix.Path(), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte{1, 0}) }); err != nil {
				t.Fatal(err)
			}
		}, "version record of 2 bytes"},
		{"bucket missing", func(t *testing.T, path string) {
			ix, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(ix.Path(), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketPacks) }); err != nil {
				t.Fatal(err)
			}
		}, `bucket "packs" missing`},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "index.db")
			c.make(t, path)
			_, err := Open(path)
			want := "index " + path + ": index file is corrupt or not a memento index: " + c.cause + hint
			if !errors.Is(err, ErrCorrupt) || (err.Error() != want && !strings.HasPrefix(err.Error(), want[:len(want)-len(hint)])) {
				t.Fatalf("Open:\n got %v\nwant %s", err, want)
			}
			ix, err := Recreate(path)
			if err != nil {
				t.Fatalf("Recreate: %v", err)
			}
			if err := ix.AddFile("index/1", makePacks("s", 1, 1, 1)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Damaged data pages (meta pages intact) must give ErrCorrupt, never a
// crash of the calling backup.
func TestDamagedPages(t *testing.T) {
	ix := openTemp(t)
	packs := makePacks("s", 1, 20, 500)
	if err := ix.AddFile("index/1", packs); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(ix.Path(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := []byte(strings.Repeat("\xde\xad\xbe\xef", 1024))
	for off := int64(4 * 4096); off < fi.Size(); off += 4096 {
		if _, err := f.WriteAt(junk, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	_, err = ix.Lookup("s", idsOf(packs))
	if err == nil {
		_, err = ix.SpaceIDs("s")
	}
	if !errors.Is(err, ErrCorrupt) || !strings.HasPrefix(err.Error(), "index "+ix.Path()+": ") {
		t.Fatalf("Lookup on damaged pages: %v", err)
	}
	t.Logf("error: %v", err)
}

func TestBusy(t *testing.T) {
	ix := openTemp(t)
	ix.lockTimeout = 300 * time.Millisecond
	db, err := bolt.Open(ix.Path(), 0o600, nil) // holds the exclusive flock
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = ix.LoadedFiles()
	want := "index " + ix.Path() + ": index file is locked by another process for more than 300ms"
	if !errors.Is(err, ErrBusy) || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	db.Close()
	if _, err := ix.LoadedFiles(); err != nil {
		t.Fatalf("after the lock is released: %v", err)
	}
}

func TestFileDeletedUnderHandle(t *testing.T) {
	ix := openTemp(t)
	if err := os.Remove(ix.Path()); err != nil {
		t.Fatal(err)
	}
	_, err := ix.LoadedFiles()
	if err == nil || !strings.Contains(err.Error(), ix.Path()) {
		t.Fatalf("got %v", err)
	}
}

// bigIndex writes an index of many pages at path and cuts it to size bytes.
func bigIndex(t *testing.T, path string, size int64) {
	t.Helper()
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.AddFile("index/1", makePacks("s", 1, 50, 100)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}
