package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// backendWithCache returns a new Backend whose handle cache holds limit
// files, and that cache.
func backendWithCache(t *testing.T, limit int) (*Backend, *handleCache) {
	t.Helper()
	b := newBackend(t)
	b.handles = newHandleCache(limit)
	return b, b.handles
}

func writeFile(t *testing.T, b *Backend, name string, data []byte) {
	t.Helper()
	if err := b.Write(context.Background(), name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

// Repeated ranged reads of one pack open it once.
func TestHandleCacheReusesOpenPack(t *testing.T) {
	b, c := backendWithCache(t, 4)
	data := randBytes(1, 1<<16)
	writeFile(t, b, "data/aa/pack", data)
	for i := range 10 {
		off := int64(i * 4096)
		if got := readAll(t, b, "data/aa/pack", off, 4096); !bytes.Equal(got, data[off:off+4096]) {
			t.Fatalf("read %d: wrong bytes", i)
		}
	}
	if open, opens, hits := c.stats(); open != 1 || opens != 1 || hits != 9 {
		t.Errorf("open %d, opens %d, hits %d; want 1, 1, 9", open, opens, hits)
	}
	// Files outside data/ are read once and never cached.
	writeFile(t, b, "index/aa", data[:100])
	readAll(t, b, "index/aa", 0, -1)
	readAll(t, b, "index/aa", 0, -1)
	if open, opens, _ := c.stats(); open != 1 || opens != 1 {
		t.Errorf("after reading index/aa: open %d, opens %d; want 1, 1", open, opens)
	}
}

// Many goroutines reading many packs through a cache smaller than the set of
// packs: every read gets its own bytes while handles are evicted under
// readers that still use them.
func TestHandleCacheConcurrentReads(t *testing.T) {
	b, c := backendWithCache(t, 2)
	const packs, size = 5, 1 << 15
	contents := make([][]byte, packs)
	for i := range contents {
		contents[i] = randBytes(uint64(i+10), size)
		writeFile(t, b, fmt.Sprintf("data/0%d/pack", i), contents[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			buf := make([]byte, 1000)
			for i := range 200 {
				p := (g + i) % packs
				off := int64((g*7919 + i*104729) % (size - len(buf)))
				rc, err := b.Open(context.Background(), fmt.Sprintf("data/0%d/pack", p), off, int64(len(buf)))
				if err != nil {
					errs <- err
					return
				}
				_, err = io.ReadFull(rc, buf)
				rc.Close()
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, contents[p][off:off+int64(len(buf))]) {
					errs <- fmt.Errorf("pack %d offset %d: wrong bytes", p, off)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if open, _, _ := c.stats(); open > 2 {
		t.Errorf("%d files open, limit 2", open)
	}
}

// An evicted handle stays usable by its reader and is closed when the reader
// closes.
func TestHandleCacheEvictionClosesAfterLastReader(t *testing.T) {
	b, c := backendWithCache(t, 1)
	one, two := randBytes(1, 5000), randBytes(2, 5000)
	writeFile(t, b, "data/aa/one", one)
	writeFile(t, b, "data/aa/two", two)
	rc, err := b.Open(context.Background(), "data/aa/one", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	h := c.m[filepath.Join(b.root, "data/aa/one")]
	if got := readAll(t, b, "data/aa/two", 0, -1); !bytes.Equal(got, two) { // evicts one
		t.Fatal("two: wrong bytes")
	}
	if _, ok := c.m[filepath.Join(b.root, "data/aa/one")]; ok {
		t.Fatal("one is still cached with a limit of 1")
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, one) {
		t.Fatalf("reading an evicted handle: %d bytes, %v", len(got), err)
	}
	rc.Close()
	rc.Close() // idempotent: must not release twice
	if _, err := h.f.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("evicted handle after its reader closed: ReadAt err = %v, want os.ErrClosed", err)
	}
}

// A pack deleted, replaced or truncated under the cache is seen as it is now,
// exactly as without a cache; a reader opened before still reads what it
// opened.
func TestHandleCacheSeesChangedPacks(t *testing.T) {
	b, _ := backendWithCache(t, 4)
	ctx := context.Background()
	p := filepath.Join(b.root, "data", "aa", "pack")
	old := randBytes(3, 8000)
	writeFile(t, b, "data/aa/pack", old)
	readAll(t, b, "data/aa/pack", 0, 10) // cached now
	early, err := b.Open(ctx, "data/aa/pack", 100, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	if err := b.Delete(ctx, "data/aa/pack"); err != nil {
		t.Fatal(err)
	}
	_, err = b.Open(ctx, "data/aa/pack", 0, 10)
	if want := "local backend: open data/aa/pack: no such file or directory"; err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after delete: err = %v, want %q wrapping fs.ErrNotExist", err, want)
	}
	if got, err := io.ReadAll(early); err != nil || !bytes.Equal(got, old[100:1100]) {
		t.Fatalf("reader opened before the delete: %d bytes, %v", len(got), err)
	}

	// Replaced by a different file of the same size under the same name.
	repl := randBytes(4, 8000)
	writeFile(t, b, "data/aa/pack", repl)
	if got := readAll(t, b, "data/aa/pack", 0, -1); !bytes.Equal(got, repl) {
		t.Fatal("replaced pack: old bytes served")
	}

	// Truncated in place (same inode): the range check sees the new size.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 5000); err != nil {
		t.Fatal(err)
	}
	_, err = b.Open(ctx, "data/aa/pack", 4000, 2000)
	if want := "local backend: open data/aa/pack: range 4000+2000 beyond end of 5000-byte file: unexpected EOF"; err == nil || err.Error() != want {
		t.Fatalf("Open after truncate: err = %v, want %q", err, want)
	}
	if got := readAll(t, b, "data/aa/pack", 0, -1); !bytes.Equal(got, repl[:5000]) {
		t.Fatal("truncated pack: wrong bytes")
	}
}

// With a limit of 0 (Windows) nothing stays open.
func TestHandleCacheDisabled(t *testing.T) {
	b, c := backendWithCache(t, 0)
	data := randBytes(5, 3000)
	writeFile(t, b, "data/aa/pack", data)
	for range 3 {
		if got := readAll(t, b, "data/aa/pack", 1000, 1000); !bytes.Equal(got, data[1000:2000]) {
			t.Fatal("wrong bytes")
		}
	}
	if open, opens, hits := c.stats(); open != 0 || opens != 0 || hits != 0 {
		t.Errorf("open %d, opens %d, hits %d; want 0, 0, 0", open, opens, hits)
	}
}
