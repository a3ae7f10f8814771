package repo

import (
	"strings"
	"testing"
)

func TestValidTag(t *testing.T) {
	for _, ok := range []string{"nightly", "before-upgrade", "v1.2", "env:prod", "identity:abc", "timeline:2", "damaged:x", "ünïcödé", strings.Repeat("a", MaxTagLen)} {
		if err := ValidTag(ok); err != nil {
			t.Errorf("ValidTag(%q) = %v, want nil", ok, err)
		}
		if err := ValidName(ok); err != nil {
			t.Errorf("%q is a valid tag but not a valid name under the mount's tags/: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                               "empty tag",
		"a b/c":                          `contains ' '`,
		"a/b":                            `contains '/'`,
		"a,b":                            `contains ','`,
		"tab\there":                      `contains '\t'`,
		"nl\n":                           `contains '\n'`,
		"nbsp\u00a0":                     `contains '\u00a0'`,
		"bell\a":                         `contains '\a'`,
		"nul\x00":                        `contains '\x00'`,
		".":                              "not a directory name",
		"..":                             "not a directory name",
		"\xff":                           "not valid UTF-8",
		strings.Repeat("a", MaxTagLen+1): "at most 128",
	} {
		err := ValidTag(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidTag(%q) = %v, want an error containing %q", bad, err, want)
		}
	}
}

func FuzzValidTag(f *testing.F) {
	f.Add("nightly")
	f.Add("a b/c")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidTag(s) == nil && ValidName(s) != nil {
			t.Fatalf("tag %q accepted but cannot be a name under tags/", s)
		}
	})
}
