package restore

import (
	"fmt"

	"memento/repo/pathmatch"
)

// A partial restore (RestoreOptions.Filter) picks paths inside the snapshot
// with patterns as restic's (package pathmatch, the matcher backup's
// excludes use): globs on the slash-separated path inside the snapshot, a
// pattern starting with '/' anchored at the snapshot's root, any other
// matching at any depth, '!' negating. An excluded directory is skipped
// with everything below it; with include patterns, a path is restored when
// it or a directory above it is included (the last include pattern that
// matches is not negated), and the directories leading to it are created
// (with their snapshot metadata).

// FilterPatterns are the patterns of a partial restore: --include,
// --iinclude (ignoring case), --exclude and --iexclude.
type FilterPatterns struct {
	Include, IInclude, Exclude, IExclude []string
}

// Filter selects the paths of a partial restore. The zero Filter selects
// everything.
type Filter struct {
	include, exclude pathmatch.Set
}

// NewFilter checks the patterns and returns their Filter.
func NewFilter(p FilterPatterns) (*Filter, error) {
	f := &Filter{}
	for _, set := range []struct {
		flag string
		in   []string
		fold bool
		out  *pathmatch.Set
	}{{"include", p.Include, false, &f.include}, {"iinclude", p.IInclude, true, &f.include},
		{"exclude", p.Exclude, false, &f.exclude}, {"iexclude", p.IExclude, true, &f.exclude}} {
		if err := set.out.Add(set.in, set.fold); err != nil {
			return nil, fmt.Errorf("--%s %w", set.flag, err)
		}
	}
	return f, nil
}

// Empty reports whether the filter selects everything.
func (f *Filter) Empty() bool { return f == nil || f.include.Empty() && f.exclude.Empty() }

// Excluded reports whether rel (a path inside the snapshot) is excluded.
func (f *Filter) Excluded(rel string) bool { return f != nil && f.exclude.Match(rel) }

// Included reports whether rel, or a directory above it, is included, or
// there are no include patterns.
func (f *Filter) Included(rel string) bool {
	return f == nil || f.include.Empty() || f.include.Match(rel)
}
