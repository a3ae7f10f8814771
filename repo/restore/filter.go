package restore

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// A partial restore (RestoreOptions.Include, Exclude) picks paths inside the
// snapshot with patterns as restic's: a pattern is a glob on the slash-
// separated path inside the snapshot ('*' and '?' within one element, '**'
// across any number of them, [class], {alt,ernatives}). A pattern starting
// with '/' is anchored at the snapshot's root; any other pattern matches at
// any depth ("*.log" is "/**/*.log"). An excluded directory is skipped with
// everything below it; with include patterns, a path is restored when it or
// a directory above it matches one, and the directories leading to it are
// created (with their snapshot metadata).

// Filter selects the paths of a partial restore. The zero Filter selects
// everything.
type Filter struct {
	include, exclude []string // anchored patterns, without the leading '/'
}

// NewFilter checks the patterns and returns their Filter.
func NewFilter(include, exclude []string) (*Filter, error) {
	f := &Filter{}
	for _, set := range []struct {
		flag string
		in   []string
		out  *[]string
	}{{"include", include, &f.include}, {"exclude", exclude, &f.exclude}} {
		for _, p := range set.in {
			q, err := anchorPattern(p)
			if err != nil {
				return nil, fmt.Errorf("--%s %q: %w", set.flag, p, err)
			}
			*set.out = append(*set.out, q)
		}
	}
	return f, nil
}

// anchorPattern turns a user's pattern into one matched against the whole
// path inside the snapshot (no leading '/').
func anchorPattern(p string) (string, error) {
	q := strings.TrimRight(p, "/")
	switch {
	case p == "":
		return "", fmt.Errorf("empty pattern")
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("pattern contains NUL")
	case q == "":
		return "", fmt.Errorf("the pattern names the snapshot's root: leave it out to restore everything")
	case strings.HasPrefix(q, "/"):
		q = strings.TrimLeft(q, "/")
	default:
		q = "**/" + q
	}
	if !doublestar.ValidatePattern(q) {
		return "", fmt.Errorf("not a valid pattern (an unclosed '[' or '{'?)")
	}
	return q, nil
}

// Empty reports whether the filter selects everything.
func (f *Filter) Empty() bool { return f == nil || len(f.include)+len(f.exclude) == 0 }

// Excluded reports whether rel (a path inside the snapshot) matches an
// exclude pattern.
func (f *Filter) Excluded(rel string) bool { return f != nil && matchAny(f.exclude, rel) }

// Included reports whether rel matches an include pattern, or there are
// none.
func (f *Filter) Included(rel string) bool {
	return f == nil || len(f.include) == 0 || matchAny(f.include, rel)
}

func matchAny(patterns []string, rel string) bool {
	for _, p := range patterns {
		if ok, _ := doublestar.Match(p, rel); ok { // patterns were validated
			return true
		}
	}
	return false
}
