package pathmatch

import (
	"strings"
	"testing"
)

// TestMatch: anchored with a leading /, at any depth otherwise, ** across
// directories, a match covers what is below it, the last matching pattern
// decides (negated ones re-include), and case-insensitive lists fold case.
func TestMatch(t *testing.T) {
	for _, c := range []struct {
		patterns []string
		fold     bool
		path     string
		want     bool
	}{
		// Plain globs, as backup's --exclude and restore's filters had them.
		{[]string{"*.tmp"}, false, "a/b/x.tmp", true},
		{[]string{"*.tmp"}, false, "x.tmp", true},
		{[]string{"*.tmp"}, false, "a/x.tmpl", false},
		{[]string{"/srv/cache"}, false, "srv/cache", true},
		{[]string{"/srv/cache"}, false, "/srv/cache", true},
		{[]string{"/srv/cache"}, false, "srv/cache/sub/f", true},
		{[]string{"/srv/cache"}, false, "other/srv/cache", false},
		{[]string{"/srv/cache"}, false, "srv/cache2", false},
		{[]string{"cache/tmp"}, false, "var/cache/tmp", true},
		{[]string{"cache/tmp"}, false, "var/cache/tmpx", false},
		{[]string{"/data/**/*.log"}, false, "data/a/b/c.log", true},
		{[]string{"/data/**/*.log"}, false, "data/c.log", true},
		{[]string{"/data/**/*.log"}, false, "elsewhere/c.log", false},
		{[]string{"build/"}, false, "home/u/build", true},
		{[]string{"build/"}, false, "home/u/build.json", false},
		{[]string{"{a,c}/*"}, false, "c/d", true},
		{[]string{"/a/b/"}, false, "a/b", true},
		{[]string{"a?c"}, false, "x/abc", true},
		{[]string{"[xy].go"}, false, "d/y.go", true},
		{[]string{"[xy].go"}, false, "d/z.go", false},
		{nil, false, "a", false},
		// Negation: the last matching pattern decides.
		{[]string{"/home/u/*", "!/home/u/work"}, false, "home/u/music", true},
		{[]string{"/home/u/*", "!/home/u/work"}, false, "home/u/work", false},
		{[]string{"/home/u/*", "!/home/u/work"}, false, "home/u/work/notes.txt", false},
		{[]string{"*.log", "!keep.log"}, false, "a/keep.log", false},
		{[]string{"*.log", "!keep.log"}, false, "a/drop.log", true},
		{[]string{"*.log", "!keep.log", "/a/keep.log"}, false, "a/keep.log", true},
		{[]string{"*.log", "!keep.log", "/a/keep.log"}, false, "b/keep.log", false},
		{[]string{"!keep.log", "*.log"}, false, "a/keep.log", true}, // a later pattern wins
		{[]string{"*.tmp", "!/a/b"}, false, "a/b/x.tmp", false},     // a negated directory covers what is below it
		{[]string{"/etc", "!/etc/secret"}, false, "etc/passwd", true},
		{[]string{"/etc", "!/etc/secret"}, false, "etc/secret/key", false},
		{[]string{"!/only-negated"}, false, "only-negated", false},
		{[]string{`\!bang`}, false, "d/!bang", true},
		{[]string{`\!bang`}, false, "d/bang", false},
		// Case folding.
		{[]string{"*.JPG"}, true, "Photos/a.jpg", true},
		{[]string{"*.jpg"}, true, "Photos/A.JPG", true},
		{[]string{"/Photos"}, true, "photos/a.jpg", true},
		{[]string{"*.jpg"}, false, "Photos/A.JPG", false},
		{[]string{"*.JPG", "!KEEP.jpg"}, true, "x/keep.JPG", false},
	} {
		l, err := Compile(c.patterns, c.fold)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.patterns, err)
		}
		if got := l.Match(c.path); got != c.want {
			t.Errorf("patterns %q (fold %v), %s: matched %v, want %v", c.patterns, c.fold, c.path, got, c.want)
		}
	}
}

// TestCompileErrors: every refused pattern is named with the reason.
func TestCompileErrors(t *testing.T) {
	for p, want := range map[string]string{
		"":      `"": empty pattern`,
		" ":     `" ": empty pattern`,
		"!":     `"!": empty pattern`,
		"/":     `"/": the pattern names the root`,
		"!//":   `"!//": the pattern names the root`,
		"a[":    `"a[": not a valid pattern`,
		"{a":    `"{a": not a valid pattern`,
		"a\x00": `"a\x00": pattern contains NUL`,
	} {
		if _, err := Compile([]string{"ok", p}, false); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Compile(%q): %v, want %q", p, err, want)
		}
	}
}

// TestSet: a set matches when any of its lists does; a negated pattern
// acts within its own list; the zero set matches nothing.
func TestSet(t *testing.T) {
	var s Set
	if s.Match("a") || !s.Empty() {
		t.Fatal("the empty set matches")
	}
	if err := s.Add(nil, true); err != nil || !s.Empty() {
		t.Fatalf("Add(nil): %v, %d lists", err, len(s))
	}
	if err := s.Add([]string{"*.log", "!keep.log"}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Add([]string{"*.TMP"}, true); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a/x.log": true, "a/keep.log": false, "a/b.tmp": true, "a/b.Tmp": true, "a/b.txt": false} {
		if got := s.Match(p); got != want {
			t.Errorf("Set.Match(%s) = %v, want %v", p, got, want)
		}
	}
	if err := s.Add([]string{"a["}, false); err == nil {
		t.Error("a bad pattern was added")
	}
}

func FuzzCompileMatch(f *testing.F) {
	for _, s := range []string{"*.tmp", "!/a/b", "/x/**/y", "{a,b}", "[a-z]", `\!x`} {
		f.Add(s, "a/b/c", false)
	}
	f.Fuzz(func(t *testing.T, pat, path string, fold bool) {
		l, err := Compile([]string{pat}, fold)
		if err != nil {
			return
		}
		_ = l.Match(path)
	})
}
