package local

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	cases := []struct {
		name string
		want string // "" = valid; else the error text
	}{
		{"config", ""},
		{"data/ab/abcdef", ""},
		{"snapshots/space_1/2024-01-01T00:00:00Z", ""},
		{"a.b/..c/c..", ""},
		{"ünïcode/名前", ""},
		{"", `local backend: invalid file name "": empty`},
		{"/etc/passwd", `local backend: invalid file name "/etc/passwd": absolute path`},
		{"/", `local backend: invalid file name "/": absolute path`},
		{"..", `local backend: invalid file name "..": ".." component`},
		{"../x", `local backend: invalid file name "../x": ".." component`},
		{"data/../../x", `local backend: invalid file name "data/../../x": ".." component`},
		{"data/..", `local backend: invalid file name "data/..": ".." component`},
		{"./x", `local backend: invalid file name "./x": "." component`},
		{"data/./x", `local backend: invalid file name "data/./x": "." component`},
		{`data\ab`, `local backend: invalid file name "data\\ab": contains a backslash`},
		{`..\..\x`, `local backend: invalid file name "..\\..\\x": contains a backslash`},
		{"data//x", `local backend: invalid file name "data//x": empty path component`},
		{"data/", `local backend: invalid file name "data/": empty path component`},
		{"a\x00b", `local backend: invalid file name "a\x00b": contains a control character`},
		{"a\nb", `local backend: invalid file name "a\nb": contains a control character`},
		{".tmp-123", `local backend: invalid file name ".tmp-123": reserved temporary-file prefix .tmp-`},
		{"data/ab/.tmp-x", `local backend: invalid file name "data/ab/.tmp-x": reserved temporary-file prefix .tmp-`},
	}
	for _, c := range cases {
		err := ValidateName(c.name)
		if c.want == "" {
			if err != nil {
				t.Errorf("ValidateName(%q) = %v, want nil", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidateName(%q) = nil, want %q", c.name, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("ValidateName(%q)\n got %q\nwant %q", c.name, err, c.want)
		}
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) does not wrap ErrInvalidName", c.name)
		}
	}
}

// Every method must refuse a bad name before touching the filesystem.
func TestMethodsRejectBadNames(t *testing.T) {
	b := newBackend(t)
	ctx := context.Background()
	for _, name := range []string{"", "../escape", "/abs", `a\b`} {
		if err := b.Write(ctx, name, strings.NewReader("x"), 1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Write(%q) = %v", name, err)
		}
		if _, err := b.Open(ctx, name, 0, -1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%q) = %v", name, err)
		}
		if _, err := b.Stat(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Stat(%q) = %v", name, err)
		}
		if err := b.Delete(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Delete(%q) = %v", name, err)
		}
		if name == "" {
			continue // List("") is the whole repository
		}
		if err := b.List(ctx, name, func(string, int64) error { return nil }); !errors.Is(err, ErrInvalidName) {
			t.Errorf("List(%q) = %v", name, err)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"data/ab/cd", "../x", "a//b", `a\b`, "/x", ".tmp-1", "a/./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		// A valid name never escapes the root and has no odd components.
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "\\\x00") {
				t.Fatalf("accepted %q", name)
			}
		}
	})
}
