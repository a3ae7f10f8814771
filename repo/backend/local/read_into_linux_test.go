//go:build linux

package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"memento/repo/directio"
)

// readInto opens name's range and reads it with ReadInto, as the restorer
// and L2 verify do.
func readInto(t *testing.T, b *Backend, name string, off, n int64) ([]byte, error) {
	t.Helper()
	rc, err := b.Open(context.Background(), name, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ir, ok := rc.(interface{ ReadInto([]byte) ([]byte, error) })
	if !ok {
		t.Fatal("the local backend's reader has no ReadInto")
	}
	return ir.ReadInto(make([]byte, n+ReadSlack+1)[1:]) // an unaligned buffer
}

// TestReadInto: small ranges through the page cache, large ones around it,
// both byte for byte; the buffer must leave room for ReadSlack.
func TestReadInto(t *testing.T) {
	b, c := backendWithCache(t, 4)
	const size = 3*directio.MinReadSize + 777
	data := randBytes(9, size)
	writeFile(t, b, "data/aa/pack", data)
	for _, c := range []struct{ off, n int64 }{
		{0, 0}, {1, 100}, {4095, 4097},
		{0, size}, {123, directio.MinReadSize}, {size - directio.MinReadSize - 5, directio.MinReadSize + 5},
	} {
		got, err := readInto(t, b, "data/aa/pack", c.off, c.n)
		if err != nil || !bytes.Equal(got, data[c.off:c.off+c.n]) {
			t.Errorf("ReadInto(%d+%d): %d bytes, %v; want the file's bytes", c.off, c.n, len(got), err)
		}
	}
	// Outside tmpfs (the test's directory), the large ranges
	// went around the page cache: a regression to plain reads fails here
	// rather than as a slower verify.
	c.mu.Lock()
	h := c.m[filepath.Join(b.root, "data", "aa", "pack")]
	c.mu.Unlock()
	var st unix.Statfs_t
	if err := unix.Statfs(b.root, &st); err == nil && st.Type != unix.TMPFS_MAGIC && (h == nil || h.direct == nil) {
		t.Errorf("large ranges were not read with O_DIRECT (handle %v)", h)
	}
	rc, err := b.Open(context.Background(), "data/aa/pack", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = rc.(*rangeReader).ReadInto(make([]byte, 10+ReadSlack-1))
	if want := "local backend: read data/aa/pack: 12297-byte buffer for 10 bytes"; err == nil || err.Error() != want {
		t.Fatalf("short buffer: err = %v, want %q", err, want)
	}
}

// TestReadIntoSeesChangedPacks: the O_DIRECT descriptor of a cached handle
// follows the handle, so a pack replaced under the cache is read exactly as
// with plain reads (the new bytes for a new Open, the old for a reader
// opened before), and a pack truncated after Open is a short read naming
// the file, never stale or zero bytes.
func TestReadIntoSeesChangedPacks(t *testing.T) {
	b, _ := backendWithCache(t, 4)
	const size = 2 * directio.MinReadSize
	old := randBytes(3, size)
	writeFile(t, b, "data/aa/pack", old)
	if got, err := readInto(t, b, "data/aa/pack", 0, size); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("first read: %v", err) // the handle and its direct descriptor are cached now
	}
	early, err := b.Open(context.Background(), "data/aa/pack", 10, size-10)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	if err := b.Delete(context.Background(), "data/aa/pack"); err != nil {
		t.Fatal(err)
	}
	repl := randBytes(4, size)
	writeFile(t, b, "data/aa/pack", repl)
	if got, err := readInto(t, b, "data/aa/pack", 0, size); err != nil || !bytes.Equal(got, repl) {
		t.Fatalf("replaced pack: old bytes served (%v)", err)
	}
	got, err := early.(*rangeReader).ReadInto(make([]byte, size+ReadSlack))
	if err != nil || !bytes.Equal(got, old[10:]) {
		t.Fatalf("reader opened before the replacement: %v", err)
	}

	p := filepath.Join(b.root, "data", "aa", "pack")
	rc, err := b.Open(context.Background(), "data/aa/pack", 0, size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size/2); err != nil {
		t.Fatal(err)
	}
	_, err = rc.(*rangeReader).ReadInto(make([]byte, size+ReadSlack))
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Contains([]byte(err.Error()), []byte("pack")) {
		t.Fatalf("read after truncation: err = %v, want io.ErrUnexpectedEOF naming the pack", err)
	}
}
