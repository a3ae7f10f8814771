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

// TestExcludePatterns: restic-like semantics, anchored with a leading /,
// at any depth otherwise, ** across directories.
func TestExcludePatterns(t *testing.T) {
	ex, err := CompileExcludes([]string{"*.tmp", "/srv/cache", "cache/tmp", "/data/**/*.log", "build/"})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/a/b/x.tmp":         true,
		"/x.tmp":             true,
		"/a/x.tmpl":          false,
		"/srv/cache":         true,
		"/other/srv/cache":   false,
		"/srv/cache2":        false,
		"/var/cache/tmp":     true,
		"/var/cache/tmpx":    false,
		"/data/a/b/c.log":    true,
		"/data/c.log":        true,
		"/elsewhere/c.log":   false,
		"/home/u/build":      true,
		"/home/u/build.json": false,
	} {
		if got := ex.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
	for _, bad := range []string{"", " ", "a["} {
		if _, err := CompileExcludes([]string{bad}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	var none *ExcludePatterns
	if none.Match("/x") {
		t.Error("no patterns match something")
	}
}

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
