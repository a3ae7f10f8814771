package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"memento/repo/backend/backendtest"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestBackendFiles(t *testing.T) {
	cfg, srv := testConfig(t, "")
	b := openTest(t, cfg)
	ctx := context.Background()
	files := map[string][]byte{
		"config":                []byte(`{"version":1}`),
		"keys/" + hex64('a'):    backendtest.RandBytes(1, 300),
		"data/ab/" + hex64('b'): backendtest.RandBytes(2, 1<<20),
		"data/cd/" + hex64('c'): {},
		"index/" + hex64('d'):   backendtest.RandBytes(3, 4096),
	}
	for name, data := range files {
		if err := b.Write(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	// Rewriting the same content-addressed file is harmless (retries do it).
	if err := b.Write(ctx, "index/"+hex64('d'), bytes.NewReader(files["index/"+hex64('d')]), 4096); err != nil {
		t.Fatal(err)
	}
	// Keys are the names below the prefix.
	keys := srv.Keys(t, cfg.Bucket, "repo/")
	if len(keys) != len(files) {
		t.Fatalf("bucket holds %v", keys)
	}
	for name, data := range files {
		if keys[name] != int64(len(data)) {
			t.Errorf("key repo/%s: size %d, want %d", name, keys[name], len(data))
		}
		size, err := b.Stat(ctx, name)
		if err != nil || size != int64(len(data)) {
			t.Errorf("Stat(%s) = %d, %v; want %d", name, size, err, len(data))
		}
		if got := backendtest.ReadAll(t, b, name, 0, -1); !bytes.Equal(got, data) {
			t.Errorf("%s: read back %d bytes, differ", name, len(got))
		}
	}
	pack := files["data/ab/"+hex64('b')]
	for _, r := range []struct{ off, n int64 }{{0, 1}, {1000, 5000}, {int64(len(pack)) - 7, 7}, {int64(len(pack)) - 7, -1}, {12345, 0}, {int64(len(pack)), 0}} {
		want := pack[r.off:]
		if r.n >= 0 {
			want = pack[r.off : r.off+r.n]
		}
		if got := backendtest.ReadAll(t, b, "data/ab/"+hex64('b'), r.off, r.n); !bytes.Equal(got, want) {
			t.Errorf("range %d+%d: got %d bytes, want %d", r.off, r.n, len(got), len(want))
		}
	}
	// Ranges past the end fail loudly, naming the file.
	for _, r := range []struct{ off, n int64 }{{int64(len(pack)) - 1, 2}, {int64(len(pack)) + 1, -1}, {int64(len(pack)) + 5, 3}} {
		_, err := b.Open(ctx, "data/ab/"+hex64('b'), r.off, r.n)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), hex64('b')) {
			t.Errorf("range %d+%d: %v, want ErrUnexpectedEOF naming the file", r.off, r.n, err)
		}
	}

	list := func(dir string) []string {
		var out []string
		if err := b.List(ctx, dir, func(name string, size int64) error {
			if size != int64(len(files[name])) {
				t.Errorf("List: %s size %d", name, size)
			}
			out = append(out, name)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	if got := list("data"); strings.Join(got, " ") != "data/ab/"+hex64('b')+" data/cd/"+hex64('c') {
		t.Errorf("List(data) = %v", got)
	}
	if got := list(""); len(got) != len(files) {
		t.Errorf("List(\"\") = %v", got)
	}
	if got := list("snapshots"); len(got) != 0 {
		t.Errorf("List(snapshots) = %v", got)
	}
	stop := errors.New("stop")
	if err := b.List(ctx, "", func(string, int64) error { return stop }); err != stop {
		t.Errorf("List returned %v, want fn's error as is", err)
	}

	// Missing files wrap fs.ErrNotExist, and the error names bucket and key.
	missing := "snapshots/" + hex64('e')
	if _, err := b.Stat(ctx, missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), `key "repo/`+missing+`"`) || !strings.Contains(err.Error(), cfg.Bucket) {
		t.Errorf("Stat(missing) = %v", err)
	}
	if _, err := b.Open(ctx, missing, 0, -1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
	if err := b.Delete(ctx, "data/ab/"+hex64('b')); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "data/ab/"+hex64('b')); err != nil {
		t.Errorf("deleting a missing file: %v", err)
	}
	if _, err := b.Stat(ctx, "data/ab/"+hex64('b')); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat after Delete = %v", err)
	}
	if b.Location() != "s3:http://"+srv.Endpoint+"/"+cfg.Bucket+"/repo" {
		t.Errorf("Location() = %q", b.Location())
	}
}

func hex64(c byte) string { return strings.Repeat(string(c), 64) }

func TestBackendBadNames(t *testing.T) {
	b, err := New(Config{Endpoint: "127.0.0.1:1", Bucket: "bucket", AccessKey: "a", SecretKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"", "/abs", "../x", "a/../b", "a//b", `a\b`, "a/.tmp-1", "a\x00b", "./a"} {
		errs := []error{
			b.Write(ctx, name, strings.NewReader("x"), 1),
			b.Delete(ctx, name),
		}
		_, err := b.Stat(ctx, name)
		errs = append(errs, err)
		_, err = b.Open(ctx, name, 0, -1)
		errs = append(errs, err)
		for i, err := range errs {
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("%q op %d: %v, want ErrInvalidName", name, i, err)
			}
		}
	}
}

func TestBackendMultipart(t *testing.T) {
	cfg, _ := testConfig(t, "")
	cfg.PartSize, cfg.SinglePutLimit, cfg.PartThreads = minPartSize, minPartSize, 3
	b := openTest(t, cfg)
	ctx := context.Background()
	data := backendtest.RandBytes(7, 3*minPartSize+12345)
	name := "data/00/" + hex64('0')
	if err := b.Write(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got := backendtest.ReadAll(t, b, name, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("multipart upload read back differently")
	}
	// A non-seekable source streams too (one attempt, buffered parts).
	name2 := "data/01/" + hex64('1')
	if err := b.Write(ctx, name2, iotest.OneByteReader(bytes.NewReader(data)), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got := backendtest.ReadAll(t, b, name2, minPartSize-10, 20); !bytes.Equal(got, data[minPartSize-10:minPartSize+10]) {
		t.Fatal("range across a part boundary differs")
	}
}

func TestBackendShortSource(t *testing.T) {
	cfg, srv := testConfig(t, "")
	b := openTest(t, cfg)
	ctx := context.Background()
	name := "index/" + hex64('f')
	err := b.Write(ctx, name, io.LimitReader(strings.NewReader("abcdef"), 3), 6)
	if err == nil || !strings.Contains(err.Error(), "write "+name) {
		t.Fatalf("short source: %v", err)
	}
	if keys := srv.Keys(t, cfg.Bucket, ""); len(keys) != 0 {
		t.Fatalf("a failed write left %v", keys)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Write(ctx2, name, strings.NewReader("abc"), 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write: %v", err)
	}
}

func TestBackendErrors(t *testing.T) {
	cfg, _ := testConfig(t, "")
	ctx := context.Background()
	oneLine := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("error is not one line: %q", msg)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q does not contain %q", msg, w)
			}
		}
	}
	t.Run("wrong credentials", func(t *testing.T) {
		c := cfg
		c.SecretKey = "wrong"
		_, err := Open(ctx, c)
		oneLine(t, err, `bucket "`+cfg.Bucket+`"`, cfg.Endpoint, "access denied")
		if !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%v does not wrap ErrAccessDenied", err)
		}
		// Past the bucket check (e.g. a key that lost its permission later),
		// the error names the key too.
		b, _ := New(c)
		_, err = b.Stat(ctx, "config")
		oneLine(t, err, `key "repo/config"`)
		if !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%v does not wrap ErrAccessDenied", err)
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		c := cfg
		c.Bucket = "no-such-bucket-here"
		_, err := Open(ctx, c)
		oneLine(t, err, `bucket "no-such-bucket-here"`, "does not exist")
		if !errors.Is(err, ErrNoBucket) {
			t.Errorf("%v does not wrap ErrNoBucket", err)
		}
		b, err := Create(ctx, c)
		if err != nil {
			t.Fatalf("Create makes the bucket: %v", err)
		}
		if _, err := b.Stat(ctx, "config"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("new bucket: %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		c := cfg
		c.Endpoint = closedPort(t)
		c.Retries = 1
		start := time.Now()
		_, err := Open(ctx, c)
		oneLine(t, err, c.Endpoint, "endpoint unreachable", "connection refused")
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%v does not wrap ErrUnreachable", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("took %s to give up", d)
		}
	})
}
