package backup

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"memento/repo/repotest"
)

// rchar is the bytes this process has read with read(2) and its kin so far.
func rchar(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no rchar in /proc/self/io")
	return 0
}

// allocated is p's allocated 512-byte blocks.
func allocated(t *testing.T, p string) int64 {
	return repotest.Lstat(t, p).Sys().(*syscall.Stat_t).Blocks
}

// TestSparseReader: a file with holes (at its start, between extents of
// data that are not block aligned, and at its end) reads through
// sparseAware as through read(2), byte for byte, with reads of any size, and
// its holes are not read: the process reads (rchar) about its data only.
func TestSparseReader(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const size = 96<<20 + 12345
	var data int64
	for i, off := range []int64{5 << 20, 5<<20 + 70000, 33<<20 + 1, 64<<20 - 100, 90 << 20} {
		d := repotest.RandomBytes(uint64(i+1), 200000+i*4096)
		if _, err := f.WriteAt(d, off); err != nil {
			t.Fatal(err)
		}
		data += int64(len(d))
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, bufSize := range []int{4095, 64 << 10, 8 << 20} {
		t.Run(strconv.Itoa(bufSize), func(t *testing.T) {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := sparseAware(f, size, allocated(t, p))
			if _, ok := r.(*sparseReader); !ok {
				t.Fatalf("sparseAware of a %d-byte file with %d allocated: %T, want a *sparseReader", size, allocated(t, p)*512, r)
			}
			before := rchar(t)
			var got bytes.Buffer
			buf := make([]byte, bufSize)
			if _, err := io.CopyBuffer(&got, r, buf); err != nil {
				t.Fatal(err)
			}
			read := rchar(t) - before
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("read %d bytes, want %d; equal %v", got.Len(), len(want), bytes.Equal(got.Bytes(), want))
			}
			if read > 4*data {
				t.Errorf("read %d bytes of the file with read(2) for %d of data in %d: the holes were read", read, data, size)
			}
		})
	}
}

// TestSparseReaderCatchesUpWithAnAppend: a reader at the end of a file that
// another process appends to must not take the appended bytes for a hole.
// locate found no data from the end on (ENXIO) and then took the file's
// size, grown by an append meanwhile, as the end of a hole: the backup
// recorded zeros where read(2) would have read the appended data, or the
// end of the file.
func TestSparseReaderCatchesUpWithAnAppend(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	block := bytes.Repeat([]byte{0xa5}, 512)
	if _, err := w.Write(block); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { // appends data, never a zero byte, until told to stop
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := w.Write(block); err != nil {
				done <- err
				return
			}
		}
	}()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := &sparseReader{f: f, fd: int(f.Fd())}
	var holes int
	for i := 0; i < 20000 && holes == 0; i++ {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		r.off, r.end = st.Size(), st.Size() // at the end as it was a moment ago
		if err := r.locate(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if err == nil && r.hole && r.end > r.off {
			holes++
			t.Errorf("the %d bytes appended at %d were taken for a hole (try %d)", r.end-r.off, r.off, i)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
