// Package backendtest holds the contract tests every repo.Backend passes
// (repo/backend.go): whole-file round trips, missing files, ranged reads and
// their errors, writes that fail or meet an existing file, bad names, List,
// cancellation, concurrent writers, and ListModTimes and the space reserve
// where implemented. A
// backend's own tests call Run and keep only what is particular to it. Tests
// only.
package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/repo"
)

// Config says what Run may expect of a backend beyond the interface.
type Config struct {
	// Name prefixes the backend's error messages, e.g. "local backend"; Run
	// then checks the exact text of the errors the backends share. Empty:
	// only what the errors wrap is checked.
	Name string
	// NotExist is how the backend words a missing file at the end of Stat's
	// error ("no such file or directory"); used with Name.
	NotExist string
	// ErrInvalidName is what the backend's errors about a bad name wrap.
	ErrInvalidName error
	// Flat is set for backends without directories (object stores): writing
	// where a directory or a file is in the way, and listing a file, are not
	// checked.
	Flat bool
	// Stored returns the name of everything the backend holds, also what
	// List hides (temporary files), to see that failed writes leave nothing;
	// nil: what List lists.
	Stored func(t *testing.T, b repo.Backend) []string
	// Litter adds to b what List must hide (temporary files, empty
	// directories, links); nil: nothing.
	Litter func(t *testing.T, b repo.Backend)
	// CheckWritten checks what a round trip wrote, beyond its content (e.g.
	// its mode on disk); nil: nothing.
	CheckWritten func(t *testing.T, b repo.Backend, name string)
	// Skip names the subtests (as "RangedReads") the backend is known to
	// fail, each with the reason it is skipped: a deviation from the
	// contract, said aloud rather than hidden in a weaker check.
	Skip map[string]string
}

// Run runs the contract tests as subtests of t, each on a new, empty
// backend from open.
func Run(t *testing.T, c Config, open func(t *testing.T) repo.Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, Config, func(*testing.T) repo.Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"StatDeleteMissing", testStatDeleteMissing},
		{"CancelledContext", testCancelledContext},
		{"RangedReads", testRangedReads},
		{"RangedReadErrors", testRangedReadErrors},
		{"RangedReadIsBounded", testRangedReadIsBounded},
		{"WriteCancelledMidCopyLeavesNothing", testWriteCancelledMidCopy},
		{"WriteSizeMismatchAndSourceErrors", testWriteSizeMismatch},
		{"WriteExisting", testWriteExisting},
		{"ConcurrentWritersSameName", testConcurrentWritersSameName},
		{"ConcurrentWritersNewDirectories", testConcurrentWritersNewDirectories},
		{"MethodsRejectBadNames", testMethodsRejectBadNames},
		{"List", testList},
		{"ListStopsOnCallbackError", testListStopsOnCallbackError},
		{"ListCancelled", testListCancelled},
		{"ListNotADirectory", testListNotADirectory},
		{"ListModTimes", testListModTimes},
		{"SpaceReserver", testSpaceReserver},
		{"Location", testLocation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := c.Skip[tc.name]; ok {
				t.Skip(why)
			}
			tc.fn(t, c, open)
		})
	}
}

// RandBytes returns n pseudo-random bytes, the same for the same seed.
func RandBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// ReadAll reads length bytes at off of name (length < 0: to its end),
// failing the test on any error.
func ReadAll(t testing.TB, b repo.Backend, name string, off, length int64) []byte {
	t.Helper()
	rc, err := b.Open(context.Background(), name, off, length)
	if err != nil {
		t.Fatalf("open %s %d+%d: %v", name, off, length, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s %d+%d: %v", name, off, length, err)
	}
	return data
}

// ListMap lists dir into a map of name to size, failing the test on an
// error or a file listed twice.
func ListMap(t testing.TB, b repo.Backend, dir string) map[string]int64 {
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

func (c Config) stored(t *testing.T, b repo.Backend) []string {
	t.Helper()
	if c.Stored != nil {
		return c.Stored(t, b)
	}
	return slices.Sorted(maps.Keys(ListMap(t, b, "")))
}

// checkText checks an error's exact text when the config names the backend;
// want is what follows "<Name>: ".
func (c Config) checkText(t *testing.T, err error, want string) {
	t.Helper()
	if c.Name == "" {
		return
	}
	if want = c.Name + ": " + want; err.Error() != want {
		t.Fatalf("error text\n got %q\nwant %q", err, want)
	}
}

func testRoundTrip(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx := context.Background()
	cases := []struct {
		name string
		size int
	}{
		{"config", 0},
		{"keys/k1", 1},
		{"data/ab/ab" + strings.Repeat("0", 62), 4096},
		{"data/cd/cd" + strings.Repeat("1", 62), 3<<20 + 17}, // several copy buffers
		{"snapshots/space-1/x y ü", 100},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := RandBytes(uint64(i), tc.size)
			if err := b.Write(ctx, tc.name, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			got := ReadAll(t, b, tc.name, 0, -1)
			if sha256.Sum256(got) != sha256.Sum256(data) || len(got) != len(data) {
				t.Fatalf("read back %d bytes differing from the %d written", len(got), len(data))
			}
			size, err := b.Stat(ctx, tc.name)
			if err != nil || size != int64(tc.size) {
				t.Fatalf("Stat = %d, %v; want %d", size, err, tc.size)
			}
			if c.CheckWritten != nil {
				c.CheckWritten(t, b, tc.name)
			}
		})
	}
}

func testStatDeleteMissing(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx := context.Background()
	_, err := b.Stat(ctx, "data/00/0000")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) err = %v", err)
	}
	c.checkText(t, err, "stat data/00/0000: "+c.NotExist)
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

func testCancelledContext(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
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

func testRangedReads(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx := context.Background()
	data := RandBytes(7, 10000)
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
	for _, tc := range cases {
		got := ReadAll(t, b, "data/aa/pack", tc.off, tc.length)
		if !bytes.Equal(got, tc.want) {
			t.Errorf("Open(off=%d, len=%d): got %d bytes, want %d (or different content)", tc.off, tc.length, len(got), len(tc.want))
		}
	}
}

func testRangedReadErrors(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx := context.Background()
	if err := b.Write(ctx, "data/aa/pack", bytes.NewReader(make([]byte, 100)), 100); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		off, length int64
		want        string
		eof         bool
	}{
		{0, 101, "open data/aa/pack: range 0+101 beyond end of 100-byte file: unexpected EOF", true},
		{99, 2, "open data/aa/pack: range 99+2 beyond end of 100-byte file: unexpected EOF", true},
		{101, 0, "open data/aa/pack: range 101+0 beyond end of 100-byte file: unexpected EOF", true},
		{101, -1, "open data/aa/pack: offset 101 beyond end of 100-byte file: unexpected EOF", true},
		{-1, 1, "open data/aa/pack: negative offset -1", false},
		{1, 1 << 62, "open data/aa/pack: range 1+4611686018427387904 beyond end of 100-byte file: unexpected EOF", true},
	}
	for _, tc := range cases {
		rc, err := b.Open(ctx, "data/aa/pack", tc.off, tc.length)
		if err == nil {
			rc.Close()
			t.Errorf("Open(%d, %d): no error", tc.off, tc.length)
			continue
		}
		if want := c.Name + ": " + tc.want; c.Name != "" && err.Error() != want {
			t.Errorf("Open(%d, %d):\n got %q\nwant %q", tc.off, tc.length, err, want)
		}
		if !strings.Contains(err.Error(), "data/aa/pack") {
			t.Errorf("Open(%d, %d): %q does not name the file", tc.off, tc.length, err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) != tc.eof {
			t.Errorf("Open(%d, %d): errors.Is(ErrUnexpectedEOF) = %v", tc.off, tc.length, !tc.eof)
		}
	}
}

// The reader must not see bytes past its range even though the file has them.
func testRangedReadIsBounded(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
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

// cancellingReader yields data in small pieces and calls cancel after the
// first piece, like a caller aborting a backup in the middle of a pack.
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

func testWriteCancelledMidCopy(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &cancellingReader{data: RandBytes(1, 100000), cancel: cancel}
	err := b.Write(ctx, "data/ab/abc", r, 100000)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Write err = %v, want context.Canceled", err)
	}
	c.checkText(t, err, "write data/ab/abc: context canceled")
	if r.reads != 1 {
		t.Fatalf("source read %d times after cancel, want 1", r.reads)
	}
	if files := c.stored(t, b); len(files) != 0 {
		t.Fatalf("files left behind: %v", files)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("network reset")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func testWriteSizeMismatch(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	cases := []struct {
		desc string
		r    io.Reader
		size int64
		want string
	}{
		{"short", strings.NewReader("abc"), 4,
			"write data/x: source ended after 3 of the declared 4 bytes: unexpected EOF"},
		{"long", strings.NewReader("abcde"), 4,
			"write data/x: source has more than the declared 4 bytes"},
		{"empty declared 1", strings.NewReader(""), 1,
			"write data/x: source ended after 0 of the declared 1 bytes: unexpected EOF"},
		{"source error", &failingReader{n: 5000}, 10000,
			"write data/x: network reset"},
		{"negative size", strings.NewReader(""), -1,
			"write data/x: negative size -1"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			b := open(t)
			err := b.Write(context.Background(), "data/x", tc.r, tc.size)
			if err == nil {
				t.Fatalf("err\n got nil\nwant %s", tc.want)
			}
			c.checkText(t, err, tc.want)
			if files := c.stored(t, b); len(files) != 0 {
				t.Fatalf("files left behind: %v", files)
			}
		})
	}
}

func testWriteExisting(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx := context.Background()
	if err := b.Write(ctx, "data/x", strings.NewReader("first"), 5); err != nil {
		t.Fatal(err)
	}
	// Same size: success, and the file is not rewritten (nor the source read).
	src := strings.NewReader("other")
	if err := b.Write(ctx, "data/x", src, 5); err != nil {
		t.Fatalf("rewrite same size: %v", err)
	}
	if src.Len() != 5 {
		t.Fatalf("source was read although the file exists")
	}
	if got := ReadAll(t, b, "data/x", 0, -1); string(got) != "first" {
		t.Fatalf("content %q, want the original", got)
	}
	// Another size: an error wrapping fs.ErrExist, file untouched.
	err := b.Write(ctx, "data/x", strings.NewReader("longer"), 6)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want fs.ErrExist", err)
	}
	c.checkText(t, err, "write data/x: exists with size 5, not 6: file already exists")
	if got := ReadAll(t, b, "data/x", 0, -1); string(got) != "first" {
		t.Fatalf("content %q, want the original", got)
	}
	if c.Flat {
		return
	}
	// A directory in the way.
	if err := b.Write(ctx, "data/d/f", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, "data/d", strings.NewReader("x"), 1); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("write over a directory: %v", err)
	}
	// A file in the way of a parent directory.
	err = b.Write(ctx, "data/x/child", strings.NewReader("x"), 1)
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("write under a file: %v", err)
	}
}

func testConcurrentWritersSameName(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx := context.Background()
	data := RandBytes(3, 2<<20)
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = b.Write(ctx, "data/ab/same", bytes.NewReader(data), int64(len(data)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if !bytes.Equal(ReadAll(t, b, "data/ab/same", 0, -1), data) {
		t.Fatal("content differs")
	}
	if files := c.stored(t, b); len(files) != 1 || files[0] != "data/ab/same" {
		t.Fatalf("files stored: %v", files)
	}
}

func testConcurrentWritersNewDirectories(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			name := fmt.Sprintf("data/%02x/f%d", i%4, i)
			errs <- b.Write(ctx, name, strings.NewReader(name), int64(len(name)))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	n := 0
	if err := b.List(ctx, "data", func(name string, size int64) error {
		n++
		if size != int64(len(name)) {
			t.Errorf("%s: size %d", name, size)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 64 {
		t.Fatalf("listed %d files, want 64", n)
	}
}

// Every method must refuse a bad name before touching anything.
func testMethodsRejectBadNames(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ctx := context.Background()
	for _, name := range []string{"", "../escape", "/abs", `a\b`, "data/.tmp-1", "a//b", "a/./b"} {
		if err := b.Write(ctx, name, strings.NewReader("x"), 1); !errors.Is(err, c.ErrInvalidName) {
			t.Errorf("Write(%q) = %v", name, err)
		}
		if _, err := b.Open(ctx, name, 0, -1); !errors.Is(err, c.ErrInvalidName) {
			t.Errorf("Open(%q) = %v", name, err)
		}
		if _, err := b.Stat(ctx, name); !errors.Is(err, c.ErrInvalidName) {
			t.Errorf("Stat(%q) = %v", name, err)
		}
		if err := b.Delete(ctx, name); !errors.Is(err, c.ErrInvalidName) {
			t.Errorf("Delete(%q) = %v", name, err)
		}
		if name == "" {
			continue // List("") is the whole repository
		}
		if err := b.List(ctx, name, func(string, int64) error { return nil }); !errors.Is(err, c.ErrInvalidName) {
			t.Errorf("List(%q) = %v", name, err)
		}
	}
	if files := c.stored(t, b); len(files) != 0 {
		t.Fatalf("files written: %v", files)
	}
}

func testList(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
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
	if c.Litter != nil {
		c.Litter(t, b)
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
		if got := ListMap(t, b, dir); !maps.Equal(got, want) {
			t.Errorf("List(%q)\n got %v\nwant %v", dir, got, want)
		}
	}
}

func testListStopsOnCallbackError(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
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

func testListCancelled(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
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

func testListNotADirectory(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	if c.Flat {
		t.Skip("a backend without directories lists nothing below a file")
	}
	b := open(t)
	if err := b.Write(context.Background(), "config", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	err := b.List(context.Background(), "config", func(string, int64) error { return nil })
	if err == nil {
		t.Fatal("err = nil")
	}
	c.checkText(t, err, "list config: not a directory")
}

// ListModTimes, where a backend has it, lists what List lists, each file
// with the time the storage wrote it.
func testListModTimes(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	ml, ok := b.(repo.ModTimeLister)
	if !ok {
		t.Skip("the backend does not implement repo.ModTimeLister")
	}
	ctx := context.Background()
	start := time.Now()
	for _, n := range []string{"locks/a", "locks/b", "data/c"} {
		if err := b.Write(ctx, n, strings.NewReader(n), int64(len(n))); err != nil {
			t.Fatal(err)
		}
	}
	end := time.Now()
	for _, dir := range []string{"", "locks"} {
		sizes := map[string]int64{}
		err := ml.ListModTimes(ctx, dir, func(name string, size int64, mtime time.Time) error {
			sizes[name] = size
			// The storage's clock, on this host in tests; S3 keeps seconds.
			if mtime.Before(start.Add(-time.Minute)) || mtime.After(end.Add(time.Minute)) {
				t.Errorf("ListModTimes(%q): %s written at %s, not between %s and %s", dir, name, mtime, start, end)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("ListModTimes(%q): %v", dir, err)
		}
		if want := ListMap(t, b, dir); !maps.Equal(sizes, want) {
			t.Errorf("ListModTimes(%q)\n got %v\nwant %v (List)", dir, sizes, want)
		}
	}
}

// The reserve, where a backend keeps one, is made by EnsureReserve, hidden
// from List, and freed once by ReleaseReserve, which reports its size.
func testSpaceReserver(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	b := open(t)
	sr, ok := b.(repo.SpaceReserver)
	if !ok {
		t.Skip("the backend does not implement repo.SpaceReserver")
	}
	ctx := context.Background()
	if _, err := sr.ReleaseReserve(ctx); err != nil {
		t.Fatalf("ReleaseReserve: %v", err)
	}
	if err := sr.EnsureReserve(ctx); err != nil {
		t.Fatalf("EnsureReserve: %v", err)
	}
	if files := ListMap(t, b, ""); len(files) != 0 {
		t.Fatalf("List shows the reserve: %v", files)
	}
	if n, err := sr.ReleaseReserve(ctx); n <= 0 || err != nil {
		t.Fatalf("ReleaseReserve after EnsureReserve = %d, %v; want the bytes it freed", n, err)
	}
	if n, err := sr.ReleaseReserve(ctx); n != 0 || err != nil {
		t.Fatalf("ReleaseReserve without a reserve = %d, %v; want 0, nil", n, err)
	}
}

// Location names the backend for messages.
func testLocation(t *testing.T, c Config, open func(*testing.T) repo.Backend) {
	if loc := open(t).Location(); loc == "" {
		t.Fatal("Location is empty")
	}
}
