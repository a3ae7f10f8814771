package repo

import (
	"slices"
	"strings"
	"testing"
)

func TestValidTag(t *testing.T) {
	for _, ok := range []string{"nightly", "before-upgrade", "v1.2", "env:prod", "ünïcödé", strings.Repeat("x", MaxTagLen)} {
		if err := ValidTag(ok); err != nil {
			t.Errorf("ValidTag(%q): %v", ok, err)
		}
	}
	bad := map[string]string{
		"":                               "empty tag",
		"a,b":                            `contains ','`,
		" a":                             `contains ' '`,
		"a b/c":                          `contains ' '`,
		"a/b":                            `contains '/'`,
		"tab\there":                      `contains '\t'`,
		"a\nb":                           `contains '\n'`,
		"nbsp\u00a0":                     `contains '\u00a0'`,
		"bell\a":                         `contains '\a'`,
		"nul\x00":                        `contains '\x00'`,
		".":                              "not a directory name",
		"..":                             "not a directory name",
		"\xff":                           "not valid UTF-8",
		strings.Repeat("x", MaxTagLen+1): "at most 128",
		"damaged:x":                      "damage marks",
		"identity:0123":                  "written only by memento",
		"timeline:2":                     "written only by memento",
		"original:" + "ab":               "written only by memento",
	}
	for tag, want := range bad {
		if err := ValidTag(tag); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidTag(%q): %v, want %q", tag, err, want)
		}
	}
}

func TestTagEditApply(t *testing.T) {
	sys := []string{"damaged: seg 3", "identity:00ff", "timeline:2", "original:abcd"}
	tags := append([]string{"a", "b"}, sys...)
	cases := []struct {
		e       TagEdit
		want    []string
		changed bool
	}{
		{TagEdit{Add: []string{"c", "a"}}, []string{"a", "b", "c"}, true},
		{TagEdit{Remove: []string{"a", "zz"}}, []string{"b"}, true},
		{TagEdit{Set: []string{}}, nil, true},
		{TagEdit{Set: []string{"x", "x"}, Add: []string{"y"}, Remove: []string{"x"}}, []string{"y"}, true},
		{TagEdit{Add: []string{"b"}}, []string{"a", "b"}, false},
	}
	for _, c := range cases {
		got, changed, err := c.e.Apply(tags)
		if err != nil || changed != c.changed || !slices.Equal(got, append(c.want, sys...)) {
			t.Errorf("%+v: %q %v %v, want %q", c.e, got, changed, err, append(c.want, sys...))
		}
	}
	if _, _, err := (TagEdit{Remove: []string{"timeline:2"}}).Apply(tags); err == nil {
		t.Error("an edit removed a system tag")
	}
	m := Manifest{Tags: tags}
	if got := m.UserTags(); !slices.Equal(got, []string{"a", "b"}) || m.Original() != "abcd" {
		t.Errorf("UserTags %q, Original %q", got, m.Original())
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
