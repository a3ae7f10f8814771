//go:build linux

package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// ringWrites logs b's fsyncs and writes; the function it returns fails t
// unless the direct writes went through the ring (where io_uring exists).
func ringWrites(b *Backend) func(t *testing.T) {
	return logSyncs(b.ring).writesThroughRing
}

// onlyReader hides a reader's WriterTo, so that Write copies it through
// the direct writer's buffer instead of writing its slice where it lies.
type onlyReader struct{ io.Reader }

// Packs written concurrently through the ring, from a slice and from a
// reader, are byte for byte what was given (their digests), and every
// direct write went through the ring.
func TestRingWritesPacks(t *testing.T) {
	needRing(t)
	b := newBackend(t)
	l := logSyncs(b.ring)
	sizes := []int{1 << 20, 9<<20 + 123, 4 << 20, 16<<20 - 4096 + 1, 5<<20 + 4095}
	var wg sync.WaitGroup
	for i, n := range sizes {
		wg.Go(func() {
			data := randBytes(uint64(100+i), n)
			var r io.Reader = bytes.NewReader(data)
			if i%2 == 1 {
				r = onlyReader{r}
			}
			if err := b.Write(context.Background(), fmt.Sprintf("data/%02x/p%d", i, i), r, int64(n)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, n := range sizes {
		got, err := os.ReadFile(filepath.Join(b.root, "data", fmt.Sprintf("%02x", i), fmt.Sprintf("p%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != sha256.Sum256(randBytes(uint64(100+i), n)) {
			t.Fatalf("pack %d (%d bytes, read %d): digest differs from what was written", i, n, len(got))
		}
	}
	l.writesThroughRing(t)
	if l.any["write"] < len(sizes) {
		t.Fatalf("%d direct writes for %d packs", l.any["write"], len(sizes))
	}
	if len(b.ring.waiting) != 0 {
		t.Fatalf("%d operations still waiting", len(b.ring.waiting))
	}
}

// A write the ring refuses to take (io_uring_enter fails) is a plain
// pwrite, the pack's bytes the same, and the refused entry is withdrawn
// from the submission queue.
func TestRingWriteSubmitFailsPlain(t *testing.T) {
	needRing(t)
	b := newBackend(t)
	l := logSyncs(b.ring)
	one, two := randBytes(7, 3<<20+5), randBytes(8, 3<<20+5)
	writeFile(t, b, "data/aa/one", one)
	if l.ring["write"] == 0 || l.ring["write"] != l.any["write"] {
		t.Fatalf("the first pack's writes did not go through the ring: %v of %v", l.ring, l.any)
	}
	refuseSubmissions(t, b)
	before := l.ring["write"]
	writeFile(t, b, "data/aa/two", two)
	if !bytes.Equal(readAll(t, b, "data/aa/two", 0, -1), two) || !bytes.Equal(readAll(t, b, "data/aa/one", 0, -1), one) {
		t.Fatal("a pack's bytes differ")
	}
	if l.ring["write"] != before || l.any["write"] <= before {
		t.Fatalf("writes %v, through the ring %v: want the second pack's written plainly", l.any, l.ring)
	}
	queueEmpty(t, b)
}

// A write that fails through the ring fails as f.WriteAt does: the same
// text, naming the file, wrapping the errno (a read-only file: EBADF).
func TestRingWriteErrorAsWriteAt(t *testing.T) {
	needRing(t)
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := newIORing()
	defer r.close()
	l := logSyncs(r)
	n, got := r.writeAt(f, []byte("abc"), 0)
	_, want := f.WriteAt([]byte("abc"), 0)
	if l.ring["write"] != 1 {
		t.Fatalf("the write did not go through the ring: %v", l.ring)
	}
	if n != 0 || want == nil || got == nil || got.Error() != want.Error() || !strings.Contains(got.Error(), "bad file descriptor") {
		t.Fatalf("through the ring: %d, %v; pwrite(2): %v; want 0 and the same error, EBADF", n, got, want)
	}
}

const fsizeEnv = "MEMENTO_LOCAL_TEST_FSIZE"

// TestRingWriteShortHelper is the child process of TestRingWriteShort:
// with RLIMIT_FSIZE at limit bytes (SIGXFSZ ignored), it writes 8 MiB at
// offset 0 through a ring and with f.WriteAt, then a pack through a
// Backend with its ring and one without (closed), and prints what each
// returned.
func TestRingWriteShortHelper(t *testing.T) {
	limit := os.Getenv(fsizeEnv)
	if limit == "" {
		t.Skip("helper process only")
	}
	var lim uint64
	fmt.Sscan(limit, &lim)
	signal.Ignore(syscall.SIGXFSZ)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: lim, Max: lim}); err != nil {
		fmt.Printf("error: setup: %v\n", err)
		return
	}
	dir := t.TempDir()
	data := randBytes(9, 8<<20)
	r := newIORing()
	l := logSyncs(r)
	for _, via := range []string{"ring", "plain"} {
		f, err := os.Create(filepath.Join(dir, via))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if via == "ring" {
			n, err = r.writeAt(f, data, 0)
		} else {
			n, err = f.WriteAt(data, 0)
		}
		got, _ := os.ReadFile(f.Name())
		f.Close()
		if via == "ring" {
			// (f.WriteAt counts 0 when a write after a short one fails.)
			fmt.Printf("ring wrote %d; ", n)
		}
		fmt.Printf("%s: %d bytes on disk, equal: %v, error: %v\n", via, len(got), bytes.Equal(got, data[:len(got)]),
			strings.ReplaceAll(fmt.Sprint(err), dir, "DIR"))
	}
	r.close()
	fmt.Printf("writes through the ring: %d of %d\n", l.ring["write"], l.any["write"])
	for _, via := range []string{"ring", "plain"} {
		b, err := Create(filepath.Join(dir, "repo-"+via))
		if err != nil {
			t.Fatal(err)
		}
		l := logSyncs(b.ring)
		if via == "plain" {
			b.Close()
		}
		err = b.Write(context.Background(), "data/aa/big", bytes.NewReader(data), int64(len(data)))
		fmt.Printf("backend %s (%d of %d writes through the ring): %v\n", via, l.ring["write"], l.any["write"],
			strings.ReplaceAll(fmt.Sprint(err), b.root, "ROOT"))
		b.Close()
	}
}

// A write cut short (RLIMIT_FSIZE: the file may grow to 4 MiB + 8 KiB)
// goes on from where it stopped and then fails as pwrite(2) does: the
// same bytes written, the same count, the same error text, through the
// ring and without it, and a pack's Write fails with the same one line.
func TestRingWriteShort(t *testing.T) {
	needRing(t)
	const limit = 4<<20 + 8192
	cmd := exec.Command(os.Args[0], "-test.run=^TestRingWriteShortHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", fsizeEnv, limit))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	got := string(out)
	if strings.Contains(got, "error: setup:") {
		t.Skipf("could not limit the file size: %s", got)
	}
	for _, want := range []string{
		"ring wrote 4202496; ring: 4202496 bytes on disk, equal: true, error: write DIR/ring: file too large\n",
		"plain: 4202496 bytes on disk, equal: true, error: write DIR/plain: file too large\n",
		"writes through the ring: 1 of 1\n",
		"backend ring (1 of 1 writes through the ring): local backend: write data/aa/big: file too large\n",
		"backend plain (0 of 1 writes through the ring): local backend: write data/aa/big: file too large\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("helper printed:\n%s\nwant a line %q", got, want)
		}
	}
}
