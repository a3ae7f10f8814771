package mem_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backend/mem"
)

// The in-memory backend is a repo.Backend and knows modification times.
var (
	_ repo.Backend       = (*mem.Backend)(nil)
	_ repo.ModTimeLister = (*mem.Backend)(nil)
)

// The contract checks below are those of the local backend's tests
// (repo/backend/local: backend_test.go, list_test.go, read_test.go,
// write_test.go, name_test.go), with "mem backend" in the messages.

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func readAll(t *testing.T, b *mem.Backend, name string, off, length int64) []byte {
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

func TestRoundTrip(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	if got := b.Location(); got != "mem:t" {
		t.Fatalf("Location = %q", got)
	}
	cases := []struct {
		name string
		size int
	}{
		{"config", 0},
		{"keys/k1", 1},
		{"data/ab/ab" + strings.Repeat("0", 62), 4096},
		{"data/cd/cd" + strings.Repeat("1", 62), 3<<20 + 17},
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
		})
	}
}

func TestStatDeleteMissing(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	_, err := b.Stat(ctx, "data/00/0000")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) err = %v", err)
	}
	if want := "mem backend: stat data/00/0000: file does not exist"; err.Error() != want {
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
	b := mem.New("t")
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

func listMap(t *testing.T, b *mem.Backend, dir string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := b.List(context.Background(), dir, func(name string, size int64) error {
		if _, dup := got[name]; dup {
			t.Errorf("%s listed twice", name)
		}
		got[name] = size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", dir, err)
	}
	return got
}

func TestList(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	files := map[string]int64{
		"config":          3,
		"keys/k1":         10,
		"data/ab/ab01":    100,
		"data/ab/ab02":    0,
		"data/cd/cd01":    7,
		"data/cdx":        1,
		"snapshots/s/m-1": 5,
	}
	for name, size := range files {
		if err := b.Write(ctx, name, strings.NewReader(strings.Repeat("x", int(size))), size); err != nil {
			t.Fatal(err)
		}
	}
	subset := func(prefix string) map[string]int64 {
		m := map[string]int64{}
		for k, v := range files {
			if prefix == "" || strings.HasPrefix(k, prefix+"/") {
				m[k] = v
			}
		}
		return m
	}
	for _, dir := range []string{"", "data", "data/", "data/ab", "data/cd", "keys", "snapshots", "locks", "data/zz"} {
		want := subset(strings.TrimSuffix(dir, "/"))
		if got := listMap(t, b, dir); !maps.Equal(got, want) {
			t.Errorf("List(%q)\n got %v\nwant %v", dir, got, want)
		}
	}
}

func TestListStopsOnCallbackError(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	for _, n := range []string{"data/a", "data/b", "data/c"} {
		if err := b.Write(ctx, n, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := b.List(ctx, "data", func(string, int64) error { calls++; return stop })
	if err != stop {
		t.Fatalf("err = %v, want the callback's error unchanged", err)
	}
	if calls != 1 {
		t.Fatalf("callback called %d times after failing", calls)
	}
}

func TestListCancelled(t *testing.T) {
	b := mem.New("t")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, n := range []string{"data/a", "data/b", "data/c"} {
		if err := b.Write(ctx, n, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	calls := 0
	err := b.List(ctx, "data", func(string, int64) error { calls++; cancel(); return nil })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("err = %v after %d calls", err, calls)
	}
}

func TestListNotADirectory(t *testing.T) {
	b := mem.New("t")
	if err := b.Write(context.Background(), "config", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	err := b.List(context.Background(), "config", func(string, int64) error { return nil })
	if err == nil || err.Error() != "mem backend: list config: not a directory" {
		t.Fatalf("err = %v", err)
	}
}

func TestListModTimes(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b.SetClock(func() time.Time { return t1 })
	if err := b.Write(ctx, "locks/a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	b.SetClock(func() time.Time { return t1.Add(time.Minute) })
	if err := b.Write(ctx, "locks/b", strings.NewReader("yy"), 2); err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	err := b.ListModTimes(ctx, "locks", func(name string, size int64, mtime time.Time) error {
		got[name] = mtime
		return nil
	})
	if err != nil || len(got) != 2 || !got["locks/a"].Equal(t1) || !got["locks/b"].Equal(t1.Add(time.Minute)) {
		t.Fatalf("ListModTimes = %v, %v", got, err)
	}
}

func TestRangedReads(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	data := randBytes(7, 10000)
	if err := b.Write(ctx, "data/aa/pack", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		off, length int64
		want        []byte
	}{
		{0, -1, data},
		{0, 10000, data},
		{0, 0, nil},
		{1, 1, data[1:2]},
		{4096, 4096, data[4096:8192]},
		{9999, 1, data[9999:]},
		{9999, -1, data[9999:]},
		{10000, -1, nil},
		{10000, 0, nil},
		{5000, -1, data[5000:]},
	}
	for _, c := range cases {
		got := readAll(t, b, "data/aa/pack", c.off, c.length)
		if !bytes.Equal(got, c.want) {
			t.Errorf("Open(off=%d, len=%d): got %d bytes, want %d (or different content)", c.off, c.length, len(got), len(c.want))
		}
	}
}

func TestRangedReadErrors(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	if err := b.Write(ctx, "data/aa/pack", bytes.NewReader(make([]byte, 100)), 100); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		off, length int64
		want        string
		eof         bool
	}{
		{0, 101, "mem backend: open data/aa/pack: range 0+101 beyond end of 100-byte file: unexpected EOF", true},
		{99, 2, "mem backend: open data/aa/pack: range 99+2 beyond end of 100-byte file: unexpected EOF", true},
		{101, 0, "mem backend: open data/aa/pack: range 101+0 beyond end of 100-byte file: unexpected EOF", true},
		{101, -1, "mem backend: open data/aa/pack: offset 101 beyond end of 100-byte file: unexpected EOF", true},
		{-1, 1, "mem backend: open data/aa/pack: negative offset -1", false},
		{1, 1 << 62, "mem backend: open data/aa/pack: range 1+4611686018427387904 beyond end of 100-byte file: unexpected EOF", true},
	}
	for _, c := range cases {
		rc, err := b.Open(ctx, "data/aa/pack", c.off, c.length)
		if err == nil {
			rc.Close()
			t.Errorf("Open(%d, %d): no error", c.off, c.length)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("Open(%d, %d):\n got %q\nwant %q", c.off, c.length, err, c.want)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) != c.eof {
			t.Errorf("Open(%d, %d): errors.Is(ErrUnexpectedEOF) = %v", c.off, c.length, !c.eof)
		}
	}
}

// The reader must not see bytes past its range even though the file has them.
func TestRangedReadIsBounded(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	if err := b.Write(ctx, "f", bytes.NewReader([]byte("0123456789")), 10); err != nil {
		t.Fatal(err)
	}
	rc, err := b.Open(ctx, "f", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 10)
	n, _ := io.ReadFull(rc, buf)
	if string(buf[:n]) != "234" {
		t.Fatalf("read %q", buf[:n])
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("network reset")
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestWriteSizeMismatchAndSourceErrors(t *testing.T) {
	cases := []struct {
		desc string
		r    io.Reader
		size int64
		want string
	}{
		{"short", strings.NewReader("abc"), 4,
			"mem backend: write data/x: source ended after 3 of the declared 4 bytes: unexpected EOF"},
		{"long", strings.NewReader("abcde"), 4,
			"mem backend: write data/x: source has more than the declared 4 bytes"},
		{"empty declared 1", strings.NewReader(""), 1,
			"mem backend: write data/x: source ended after 0 of the declared 1 bytes: unexpected EOF"},
		{"source error", &failingReader{n: 5000}, 10000,
			"mem backend: write data/x: network reset"},
		{"negative size", strings.NewReader(""), -1,
			"mem backend: write data/x: negative size -1"},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			b := mem.New("t")
			err := b.Write(context.Background(), "data/x", c.r, c.size)
			if err == nil || err.Error() != c.want {
				t.Fatalf("err\n got %v\nwant %s", err, c.want)
			}
			if files := listMap(t, b, ""); len(files) != 0 {
				t.Fatalf("files left behind: %v", files)
			}
		})
	}
}

// cancellingReader cancels after its first piece, like a caller aborting a
// backup in the middle of a pack.
type cancellingReader struct {
	data   []byte
	cancel func()
	reads  int
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1024)], r.data)
	r.data = r.data[n:]
	r.reads++
	if r.reads == 1 {
		r.cancel()
	}
	return n, nil
}

func TestWriteCancelledMidCopyLeavesNothing(t *testing.T) {
	b := mem.New("t")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := randBytes(1, 10<<10)
	err := b.Write(ctx, "data/x", &cancellingReader{data: data, cancel: cancel}, int64(len(data)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if files := listMap(t, b, ""); len(files) != 0 {
		t.Fatalf("files left behind: %v", files)
	}
}

func TestWriteExisting(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	if err := b.Write(ctx, "data/x", strings.NewReader("first"), 5); err != nil {
		t.Fatal(err)
	}
	src := strings.NewReader("other")
	if err := b.Write(ctx, "data/x", src, 5); err != nil {
		t.Fatalf("rewrite same size: %v", err)
	}
	if src.Len() != 5 {
		t.Fatalf("source was read although the file exists")
	}
	if got := readAll(t, b, "data/x", 0, -1); string(got) != "first" {
		t.Fatalf("content %q, want the original", got)
	}
	err := b.Write(ctx, "data/x", strings.NewReader("longer"), 6)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want fs.ErrExist", err)
	}
	if want := "mem backend: write data/x: exists with size 5, not 6: file already exists"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if got := readAll(t, b, "data/x", 0, -1); string(got) != "first" {
		t.Fatalf("content %q, want the original", got)
	}
	if err := b.Write(ctx, "data/d/f", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, "data/d", strings.NewReader("x"), 1); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("write over a directory: %v", err)
	}
	err = b.Write(ctx, "data/x/child", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("write under a file: %v", err)
	}
}

func TestConcurrentWritersSameName(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	data := randBytes(3, 2<<20)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = b.Write(ctx, "data/p", bytes.NewReader(data), int64(len(data))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if got := readAll(t, b, "data/p", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

// Every method must refuse a bad name before touching anything.
func TestMethodsRejectBadNames(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	for _, name := range []string{"", "../escape", "/abs", `a\b`, "data/.tmp-1", "a//b", "a/./b"} {
		if err := b.Write(ctx, name, strings.NewReader("x"), 1); !errors.Is(err, mem.ErrInvalidName) {
			t.Errorf("Write(%q) = %v", name, err)
		}
		if _, err := b.Open(ctx, name, 0, -1); !errors.Is(err, mem.ErrInvalidName) {
			t.Errorf("Open(%q) = %v", name, err)
		}
		if _, err := b.Stat(ctx, name); !errors.Is(err, mem.ErrInvalidName) {
			t.Errorf("Stat(%q) = %v", name, err)
		}
		if err := b.Delete(ctx, name); !errors.Is(err, mem.ErrInvalidName) {
			t.Errorf("Delete(%q) = %v", name, err)
		}
		if name == "" {
			continue // List("") is the whole repository
		}
		if err := b.List(ctx, name, func(string, int64) error { return nil }); !errors.Is(err, mem.ErrInvalidName) {
			t.Errorf("List(%q) = %v", name, err)
		}
	}
	if files := listMap(t, b, ""); len(files) != 0 {
		t.Fatalf("files written: %v", files)
	}
}

// TestFaults: the hook fails an operation, cuts a read short or corrupts
// its bytes in flight; Damage changes the stored file itself.
func TestFaults(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	data := randBytes(5, 1000)
	if err := b.Write(ctx, "data/p", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")

	b.FailOn(mem.OpStat, func(n string) bool { return n == "data/p" }, boom)
	if _, err := b.Stat(ctx, "data/p"); !errors.Is(err, boom) || err.Error() != "mem backend: stat data/p: boom" {
		t.Fatalf("Stat with a fault: %v", err)
	}
	if got := readAll(t, b, "data/p", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("a fault on stat changed open")
	}

	b.FailOn(mem.OpWrite, func(string) bool { return true }, boom)
	if err := b.Write(ctx, "data/q", strings.NewReader("x"), 1); !errors.Is(err, boom) {
		t.Fatalf("Write with a fault: %v", err)
	}
	if _, err := b.Stat(ctx, "data/q"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed write stored the file: %v", err)
	}

	b.SetHook(func(op mem.Op, name string, off, length int64) mem.Fault {
		if op == mem.OpOpen {
			return mem.Fault{Short: true, ShortAfter: 10}
		}
		return mem.Fault{}
	})
	rc, err := b.Open(ctx, "data/p", 100, 50)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(got, data[100:110]) {
		t.Fatalf("short read: %d bytes, %v", len(got), err)
	}

	b.SetHook(func(op mem.Op, name string, off, length int64) mem.Fault {
		return mem.Fault{Corrupt: func(o int64, p []byte) {
			if o != 100 || len(p) != 50 {
				t.Errorf("Corrupt(%d, %d bytes), want 100, 50", o, len(p))
			}
			p[0] ^= 1
		}}
	})
	got = readAll(t, b, "data/p", 100, 50)
	if got[0] != data[100]^1 || !bytes.Equal(got[1:], data[101:150]) {
		t.Fatal("corrupting hook not applied")
	}
	b.SetHook(nil)
	if got := readAll(t, b, "data/p", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("a read fault changed the stored file")
	}

	if err := b.Damage("data/p", func(d []byte) []byte { return d[:500] }); err != nil {
		t.Fatal(err)
	}
	if size, err := b.Stat(ctx, "data/p"); err != nil || size != 500 {
		t.Fatalf("after truncating damage: %d, %v", size, err)
	}
	if err := b.Damage("data/none", func(d []byte) []byte { return d }); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Damage(missing): %v", err)
	}
}
