package backup

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"memento/repo"
)

// TestFullPathRoots: sources become their absolute paths from the root;
// a source inside another is part of it; directories above hold only the
// way down.
func TestFullPathRoots(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"srv/a/x", "srv/b/x", "srv/b/y", "srv/c"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	j := func(p string) string { return filepath.Join(dir, p) }
	items, paths, err := fullPathRoots([]string{j("srv/a/x"), j("srv/b/x"), j("srv/b/x/../x"), j("srv/c"), j("srv/b")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{j("srv/a/x"), j("srv/b"), j("srv/b/x"), j("srv/c")}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths %q, want %q", paths, want)
	}
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	if len(items) != 1 || items[0].path != "/"+parts[0] || items[0].source {
		t.Fatalf("top items %+v", items)
	}
	// Walk the selection down to srv: a (the way down to x), b and c (whole).
	sel := items[0].sel
	for _, part := range parts[1:] {
		if got := keys(sel); !reflect.DeepEqual(got, []string{part}) {
			t.Fatalf("a directory above the sources holds %q, want only %q", got, part)
		}
		sel = sel[part]
	}
	srv := sel["srv"]
	if got := keys(srv); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("srv holds %q", got)
	}
	if srv["b"] != nil || srv["c"] != nil || !reflect.DeepEqual(keys(srv["a"]), []string{"x"}) || srv["a"]["x"] != nil {
		t.Errorf("selection under srv: %+v", srv)
	}
	if _, _, err := fullPathRoots([]string{j("missing")}); !errors.Is(err, repo.ErrNotFound) {
		t.Errorf("a missing source: %v", err)
	}
}

func keys(s selection) []string {
	out := []string{}
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
