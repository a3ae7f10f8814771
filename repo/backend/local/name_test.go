package local

import (
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
