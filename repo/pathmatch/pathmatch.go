// Package pathmatch matches paths against the patterns of backup's
// --exclude/--iexclude and restore's --include/--exclude/--iinclude/
// --iexclude, with restic's semantics, so both commands agree on what a
// pattern means.
//
// A pattern is a glob on a slash-separated path ('*' and '?' within one
// element, '**' across any number of them, [class], {alt,ernatives},
// '\' escapes). One starting with '/' is anchored at the root (of the file
// system for backup, of the snapshot for restore); any other matches at any
// depth ("*.log" is "/**/*.log"). A trailing '/' is ignored. A pattern that
// matches a directory matches everything below it.
//
// A pattern starting with '!' is negated: a path it matches is no longer
// matched by the patterns before it. Patterns are read in order and the
// last one that matches a path decides, as in restic and gitignore
// ("/home/u/*" then "!/home/u/work" leaves out everything in /home/u but
// work). A backup or restore does not look into a directory it leaves out,
// so a negated pattern cannot bring back something below one ("/data" then
// "!/data/keep" leaves out all of /data: write "/data/*"). "\!" starts a
// pattern for a name that begins with '!'.
//
// A case-insensitive list (--iexclude, --iinclude) matches the lower-case
// path against the lower-case pattern.
package pathmatch

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// pattern is one compiled pattern.
type pattern struct {
	glob   string // matched against the whole path (no leading '/')
	below  string // glob + "/**": the path is below a match
	negate bool
}

// List is one ordered list of patterns (one flag's, e.g. --exclude with
// --exclude-file), all case-sensitive or all not.
type List struct {
	pats []pattern
	fold bool
}

// Compile checks patterns and returns their List; fold makes it
// case-insensitive. An error names the pattern and says what is wrong;
// the caller adds the flag.
func Compile(patterns []string, fold bool) (*List, error) {
	l := &List{fold: fold}
	for _, p := range patterns {
		pat, err := compile(p, fold)
		if err != nil {
			return nil, err
		}
		l.pats = append(l.pats, pat)
	}
	return l, nil
}

// errReason is Compile's error: the pattern, quoted, and what is wrong.
func errReason(p, reason string) error { return fmt.Errorf("%q: %s", p, reason) }

func compile(p string, fold bool) (pattern, error) {
	var pat pattern
	q := p
	if strings.HasPrefix(q, "!") {
		pat.negate, q = true, q[1:]
	}
	trimmed := strings.TrimRight(q, "/")
	switch {
	case strings.TrimSpace(q) == "":
		return pat, errReason(p, "empty pattern")
	case strings.ContainsRune(q, 0):
		return pat, errReason(p, "pattern contains NUL")
	case trimmed == "":
		return pat, errReason(p, "the pattern names the root, which holds everything")
	case strings.HasPrefix(trimmed, "/"):
		trimmed = strings.TrimLeft(trimmed, "/")
	default:
		trimmed = "**/" + trimmed
	}
	if fold {
		trimmed = strings.ToLower(trimmed)
	}
	if !doublestar.ValidatePattern(trimmed) {
		return pat, errReason(p, "not a valid pattern (an unclosed '[' or '{'?)")
	}
	pat.glob, pat.below = trimmed, trimmed+"/**"
	return pat, nil
}

// Match reports whether the path rel (slash-separated, without a leading
// '/') is matched: the last pattern that matches it, or a directory above
// it, is not negated.
func (l *List) Match(rel string) bool {
	if l == nil || len(l.pats) == 0 {
		return false
	}
	rel = strings.TrimLeft(rel, "/")
	if l.fold {
		rel = strings.ToLower(rel)
	}
	for i := len(l.pats) - 1; i >= 0; i-- {
		p := l.pats[i]
		if ok, _ := doublestar.Match(p.glob, rel); ok { // validated by compile
			return !p.negate
		}
		if ok, _ := doublestar.Match(p.below, rel); ok {
			return !p.negate
		}
	}
	return false
}

// Len is the number of patterns.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.pats)
}

// Set is several lists, e.g. --exclude's and --iexclude's: a path is
// matched when any list matches it. A negated pattern acts within its own
// list only, as restic's. The nil Set matches nothing.
type Set []*List

// Add compiles patterns as one more list of the set (nothing for none).
func (s *Set) Add(patterns []string, fold bool) error {
	if len(patterns) == 0 {
		return nil
	}
	l, err := Compile(patterns, fold)
	if err != nil {
		return err
	}
	*s = append(*s, l)
	return nil
}

// Match reports whether any list matches rel.
func (s Set) Match(rel string) bool {
	for _, l := range s {
		if l.Match(rel) {
			return true
		}
	}
	return false
}

// Empty reports whether the set has no pattern.
func (s Set) Empty() bool {
	for _, l := range s {
		if l.Len() > 0 {
			return false
		}
	}
	return true
}
