package directio

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// dirs are the file systems the Writer is tried on: the test's temporary
// directory (on the CI machines ext4, where O_DIRECT works) and /dev/shm
// (tmpfs, which refuses O_DIRECT: the fallback path).
func dirs(t *testing.T) map[string]string {
	d := map[string]string{"tempdir": t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		shm, err := os.MkdirTemp("/dev/shm", "directio-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(shm) })
			d["tmpfs"] = shm
		}
	}
	return d
}

func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestWriterSizes(t *testing.T) {
	sizes := []int{0, 1, Align - 1, Align, Align + 1, BufferSize - 1, BufferSize, BufferSize + 1, 3*BufferSize + 12345}
	for name, dir := range dirs(t) {
		for _, n := range sizes {
			for _, how := range []string{"write", "readfrom", "half-reader", "aligned", "tiny-first"} {
				data := pattern(n)
				p := filepath.Join(dir, "f")
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				w := NewWriter(f)
				switch how {
				case "write":
					// Uneven pieces cross the buffer boundary at odd offsets.
					for rest := data; len(rest) > 0; {
						k := min(len(rest), 1<<20+7)
						if _, err := w.Write(rest[:k]); err != nil {
							t.Fatal(err)
						}
						rest = rest[k:]
					}
				case "readfrom":
					if m, err := w.ReadFrom(bytes.NewReader(data)); err != nil || m != int64(n) {
						t.Fatalf("ReadFrom = %d, %v", m, err)
					}
				case "aligned":
					// An aligned buffer is written where it lies, all but
					// its last partial block, which is gathered.
					if n == 0 {
						f.Close()
						continue
					}
					buf := Alloc(n)
					copy(buf, data)
					if m, err := w.Write(buf); err != nil || m != n {
						t.Fatalf("Write = %d, %v", m, err)
					}
					if w.n != n%Align {
						t.Fatalf("%d bytes gathered after an aligned write of %d, want %d", w.n, n, n%Align)
					}
					// ... in a one-block buffer, not a BufferSize one (a
					// pack's write allocated 4 MiB for its last block).
					if (w.buf != nil) != (n%Align != 0) || (w.buf != nil && (!w.small || len(*w.buf) != Align)) {
						t.Fatalf("aligned write of %d: buffer %v (small %v), want one block only for a partial block", n, w.buf != nil, w.small)
					}
				case "tiny-first":
					// A few bytes into the one-block buffer, then the rest:
					// the gathered bytes move to a full buffer.
					k := min(n, 100)
					if _, err := w.Write(data[:k]); err != nil {
						t.Fatal(err)
					}
					if _, err := w.Write(data[k:]); err != nil {
						t.Fatal(err)
					}
				case "half-reader":
					if n > 2*BufferSize {
						f.Close()
						continue // slow and adds nothing over the smaller sizes
					}
					if m, err := io.Copy(w, iotest.HalfReader(bytes.NewReader(data))); err != nil || m != int64(n) {
						t.Fatalf("Copy = %d, %v", m, err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatalf("%s %d %s: Close: %v", name, n, how, err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("%s, %d bytes via %s: file differs (len %d)", name, n, how, len(got))
				}
			}
		}
	}
}

// TestWriterDirectWhereSupported pins which path each file system takes, so
// a regression to buffered writes everywhere shows as a failure, not as a
// slower benchmark.
func TestWriterDirectWhereSupported(t *testing.T) {
	for name, dir := range dirs(t) {
		f, err := os.Create(filepath.Join(dir, "probe"))
		if err != nil {
			t.Fatal(err)
		}
		w := NewWriter(f)
		t.Logf("%s (%s): direct = %v", name, dir, w.Direct())
		if name == "tmpfs" && w.Direct() {
			// Newer kernels accept O_DIRECT on tmpfs; the data test above
			// covers that case too.
			t.Logf("tmpfs accepts O_DIRECT on this kernel")
		}
		w.Close()
		f.Close()
	}
}

func TestWriterReportsWriteErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ro")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(f)
	_, werr := w.Write(pattern(BufferSize + 10))
	if werr == nil {
		t.Fatal("Write of a full buffer to a read-only file succeeded")
	}
	if cerr := w.Close(); cerr == nil {
		t.Fatal("Close after a failed write succeeded")
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close and a failure succeeded")
	}
}
