package local

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func listMap(t *testing.T, b *Backend, dir string) map[string]int64 {
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
	b := newBackend(t)
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
	// Litter that List must hide: a temp file left by a killed writer, an
	// empty directory, a symlink.
	root := b.Location()
	if err := os.WriteFile(filepath.Join(root, "data", "ab", ".tmp-12345"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "data", "ee"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "data", "cd", "link")); err != nil {
		t.Fatal(err)
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
	b := newBackend(t)
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
	b := newBackend(t)
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
	b := newBackend(t)
	if err := b.Write(context.Background(), "config", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	err := b.List(context.Background(), "config", func(string, int64) error { return nil })
	if err == nil || err.Error() != "local backend: list config: not a directory" {
		t.Fatalf("err = %v", err)
	}
}
