package inspect

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"memento/repo"
)

// Filter selects snapshots with restic's semantics: a snapshot matches
// when its host is one of Hosts, its space one of Spaces, it includes
// every one of Paths, and it has every tag of at least one entry of Tags
// (an entry is "a,b": both a and b; entries are alternatives). An empty
// field matches everything.
type Filter struct {
	Hosts  []string
	Spaces []string
	Paths  []string
	Tags   []string
}

// Match reports whether sn passes the filter.
func (f Filter) Match(sn *repo.Snapshot) bool {
	if len(f.Hosts) > 0 && !slices.Contains(f.Hosts, sn.Host) {
		return false
	}
	if len(f.Spaces) > 0 && !slices.Contains(f.Spaces, sn.Space) {
		return false
	}
	for _, p := range f.Paths {
		if !slices.ContainsFunc(sn.Paths, func(q string) bool { return path.Clean(q) == path.Clean(p) }) {
			return false
		}
	}
	if len(f.Tags) == 0 {
		return true
	}
	for _, alt := range f.Tags {
		all := true
		for _, t := range strings.Split(alt, ",") {
			if t = strings.TrimSpace(t); t != "" && !slices.Contains(sn.Tags, t) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// Select returns the snapshots of sns that match, in the order given.
func (f Filter) Select(sns []*repo.Snapshot) []*repo.Snapshot {
	var out []*repo.Snapshot
	for _, sn := range sns {
		if f.Match(sn) {
			out = append(out, sn)
		}
	}
	return out
}

// GroupKey is what a group of snapshots shares: the fields named by the
// --group-by keys, the others empty.
type GroupKey struct {
	Host  string   `json:"host,omitempty"`
	Paths []string `json:"paths,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	Space string   `json:"space,omitempty"`
}

func (k GroupKey) String() string {
	var parts []string
	if k.Host != "" {
		parts = append(parts, "host "+k.Host)
	}
	if k.Space != "" {
		parts = append(parts, "space "+k.Space)
	}
	if k.Paths != nil {
		parts = append(parts, "paths ["+strings.Join(k.Paths, ", ")+"]")
	}
	if k.Tags != nil {
		parts = append(parts, "tags ["+strings.Join(k.Tags, ", ")+"]")
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ", ")
}

// Group is the snapshots sharing a GroupKey, in the order given.
type Group struct {
	Key       GroupKey         `json:"group_key"`
	Snapshots []*repo.Snapshot `json:"snapshots"`
}

// GroupKeys are the valid --group-by keys.
var GroupKeys = []string{"host", "paths", "tags", "space"}

// ParseGroupBy checks a --group-by list ("host,paths"); "" is no grouping.
func ParseGroupBy(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(GroupKeys, k) {
			return nil, fmt.Errorf("--group-by %q: unknown key %q (keys: %s)", s, k, strings.Join(GroupKeys, ", "))
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// GroupBy groups sns by keys (ParseGroupBy), groups ordered by key, the
// snapshots of a group in the order given. No keys: one group.
func GroupBy(keys []string, sns []*repo.Snapshot) []Group {
	idx := map[string]int{}
	var out []Group
	for _, sn := range sns {
		var k GroupKey
		for _, key := range keys {
			switch key {
			case "host":
				k.Host = sn.Host
			case "space":
				k.Space = sn.Space
			case "paths":
				k.Paths = slices.Sorted(slices.Values(sn.Paths))
				if k.Paths == nil {
					k.Paths = []string{}
				}
			case "tags":
				k.Tags = slices.Sorted(slices.Values(sn.UserTags()))
			}
		}
		id := fmt.Sprintf("%q %q %q %q", k.Host, k.Space, k.Paths, k.Tags)
		i, ok := idx[id]
		if !ok {
			i = len(out)
			idx[id] = i
			out = append(out, Group{Key: k})
		}
		out[i].Snapshots = append(out[i].Snapshots, sn)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key.String() < out[j].Key.String() })
	return out
}

// Latest keeps the n newest snapshots of each group of sns (grouped by
// keys; no keys: by space, and snapshots of plain paths by host and
// paths, the groups forget keeps), oldest first.
func Latest(keys []string, sns []*repo.Snapshot, n int) []*repo.Snapshot {
	keep := map[*repo.Snapshot]bool{}
	if len(keys) == 0 {
		for _, g := range GroupBy([]string{"space"}, sns) {
			if g.Key.Space != "" {
				markNewest(keep, g.Snapshots, n)
				continue
			}
			for _, h := range GroupBy([]string{"host", "paths"}, g.Snapshots) {
				markNewest(keep, h.Snapshots, n)
			}
		}
	} else {
		for _, g := range GroupBy(keys, sns) {
			markNewest(keep, g.Snapshots, n)
		}
	}
	var out []*repo.Snapshot
	for _, sn := range sns {
		if keep[sn] {
			out = append(out, sn)
		}
	}
	return out
}

// markNewest marks the n newest of sns (sorted oldest first by time).
func markNewest(keep map[*repo.Snapshot]bool, sns []*repo.Snapshot, n int) {
	s := slices.Clone(sns)
	sort.SliceStable(s, func(i, j int) bool { return s[i].Time.Before(s[j].Time) })
	for _, sn := range s[max(0, len(s)-n):] {
		keep[sn] = true
	}
}
