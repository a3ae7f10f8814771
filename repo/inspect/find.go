package inspect

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"memento/repo"
)

// FindOptions say what Find looks for: paths matching any of Patterns (a
// pattern without '/' matches a base name, one with '/' the whole path
// from the snapshot's root, path.Match syntax), below Under ("" or "/":
// everywhere).
type FindOptions struct {
	Patterns []string
	Under    string
	// TreeCacheBytes bounds the trees kept while Find runs, so that a tree
	// the snapshots share is read once (0: DefaultTreeCacheBytes; < 0:
	// keep none).
	TreeCacheBytes int64
}

// Match is one path Find found.
type Match struct {
	Snapshot string    `json:"snapshot"` // full snapshot ID
	Space    string    `json:"space,omitempty"`
	Time     time.Time `json:"snapshot_time"`
	Path     string    `json:"path"`
	Type     string    `json:"type"`
	Size     uint64    `json:"size"`
	MTime    time.Time `json:"mtime"`
}

// CheckPatterns reports the first malformed pattern, or nil.
func CheckPatterns(patterns []string) error {
	for _, p := range patterns {
		if p == "" {
			return fmt.Errorf("pattern %q: empty", p)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// matches reports whether p (a path as Walk gives it) matches a pattern.
func matches(patterns []string, p string) bool {
	for _, pat := range patterns {
		subject := path.Base(p)
		if strings.Contains(pat, "/") {
			subject = p
			if !strings.HasPrefix(pat, "/") {
				subject = strings.TrimPrefix(p, "/")
			}
		}
		if ok, _ := path.Match(pat, subject); ok {
			return true
		}
	}
	return false
}

// Find walks the snapshots sns in the order given and calls fn for every
// path that matches opts. A snapshot without opts.Under is skipped. The
// trees it reads are kept for the run (treeCache, bounded by
// opts.TreeCacheBytes): snapshots share most of their trees, which are
// then read once.
func Find(ctx context.Context, r Repository, sns []*repo.Snapshot, opts FindOptions, fn func(Match) error) error {
	if err := CheckPatterns(opts.Patterns); err != nil {
		return err
	}
	under := path.Clean("/" + opts.Under)
	if max := opts.TreeCacheBytes; max >= 0 {
		if max == 0 {
			max = DefaultTreeCacheBytes
		}
		r = newTreeCache(r, max)
	}
	for _, sn := range sns {
		if under != "/" {
			if _, _, err := Lookup(ctx, r, sn, under); err != nil {
				if isNotFound(err) {
					continue
				}
				return err
			}
		}
		err := Walk(ctx, r, sn, under, func(p string, n *repo.Node) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !matches(opts.Patterns, p) {
				return nil
			}
			return fn(Match{Snapshot: sn.ID.String(), Space: sn.Space, Time: sn.Time, Path: p, Type: n.Type,
				Size: n.Size, MTime: time.Unix(0, n.MTimeNS).UTC()})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
