package repo

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTagLen is the longest tag a user may give, in bytes.
const MaxTagLen = 128

// ValidTag reports whether t can be a user's tag: every tag a backup
// accepts is a name under the mount's tags/ directory and one word in
// `snapshots` output and in --tag filters. A tag is 1 to MaxTagLen bytes of
// UTF-8 without '/', ',' (the separator of --tag a,b), whitespace or control
// characters, and is not "." or "..". The prefixes only memento writes
// (ReservedTag, DamageTagPrefix) are checked apart: this says nothing of
// them, so that the tags memento writes pass too.
func ValidTag(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("empty tag")
	case len(t) > MaxTagLen:
		return fmt.Errorf("tag of %d bytes (at most %d)", len(t), MaxTagLen)
	case !utf8.ValidString(t):
		return fmt.Errorf("tag %q is not valid UTF-8", t)
	case t == "." || t == "..":
		return fmt.Errorf("tag %q is not a directory name", t)
	}
	if i := strings.IndexFunc(t, func(r rune) bool {
		return r == '/' || r == ',' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar
	}); i >= 0 {
		r, _ := utf8.DecodeRuneInString(t[i:])
		return fmt.Errorf("tag %q contains %q (not allowed: '/', ',', whitespace, control characters)", t, r)
	}
	return nil
}
