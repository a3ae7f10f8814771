package fusefs

import (
	"sort"
	"time"

	"memento/chunk"
	"memento/repo"
)

// catalog is an immutable view of the repository's snapshots, indexed the
// ways the generated directories need. A refresh builds a new one and swaps
// it in, so readers never lock.
type catalog struct {
	loaded time.Time
	snaps  []*repo.Snapshot // oldest first
	name   map[chunk.ID]string
	byName map[string]*repo.Snapshot
	spaces map[string][]*repo.Snapshot // oldest first, like all groups
	hosts  map[string][]*repo.Snapshot
	tags   map[string][]*repo.Snapshot
}

// shortNameLen is the length of a snapshot's directory name: the 8 hex
// digits operators see everywhere, longer only when two IDs share them.
const shortNameLen = 8

func newCatalog(snaps []*repo.Snapshot, now time.Time) *catalog {
	c := &catalog{loaded: now, snaps: snaps, name: make(map[chunk.ID]string, len(snaps)),
		byName: make(map[string]*repo.Snapshot, len(snaps)),
		spaces: map[string][]*repo.Snapshot{}, hosts: map[string][]*repo.Snapshot{}, tags: map[string][]*repo.Snapshot{}}
	hexes := make([]string, len(snaps))
	for i, sn := range snaps {
		hexes[i] = sn.ID.String()
	}
	sorted := append([]string(nil), hexes...)
	sort.Strings(sorted)
	need := make(map[string]int, len(sorted))
	for i, h := range sorted {
		n := shortNameLen
		if i > 0 {
			n = max(n, commonPrefix(h, sorted[i-1])+1)
		}
		if i+1 < len(sorted) {
			n = max(n, commonPrefix(h, sorted[i+1])+1)
		}
		need[h] = min(n, len(h))
	}
	for i, sn := range snaps {
		name := hexes[i][:need[hexes[i]]]
		c.name[sn.ID] = name
		c.byName[name] = sn
		if sn.Space != "" {
			c.spaces[sn.Space] = append(c.spaces[sn.Space], sn)
		}
		if repo.ValidName(sn.Host) == nil {
			c.hosts[sn.Host] = append(c.hosts[sn.Host], sn)
		}
		for _, t := range sn.Tags {
			if repo.ValidName(t) == nil {
				c.tags[t] = append(c.tags[t], sn)
			}
		}
	}
	return c
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// latest returns the newest snapshot of a group, or nil.
func latest(group []*repo.Snapshot) *repo.Snapshot {
	if len(group) == 0 {
		return nil
	}
	return group[len(group)-1]
}

// timeName is a snapshot's name under by-time/: its time in RFC 3339 with
// nanoseconds, in UTC so that names sort by time.
func timeName(sn *repo.Snapshot) string {
	return sn.Time.UTC().Format(time.RFC3339Nano)
}

// catalog returns the current catalog, syncing with the repository first
// when it is older than maxAge. A failed sync is logged and the old catalog
// kept: a mount that cannot see new snapshots can still serve the old ones.
func (f *FS) catalog(maxAge time.Duration) *catalog {
	if c := f.cat.Load(); c != nil && time.Since(c.loaded) < maxAge {
		return c
	}
	f.refreshMu.Lock()
	defer f.refreshMu.Unlock()
	c := f.cat.Load()
	if c != nil && time.Since(c.loaded) < maxAge {
		return c // someone else refreshed while we waited
	}
	// The first catalog needs no sync: repo.Open has just synced.
	if c != nil {
		if err := f.r.Sync(f.ctx); err != nil {
			f.log.Warn("cannot sync with the repository; showing the snapshots known so far", "err", err)
			c = &catalog{loaded: time.Now(), snaps: c.snaps, name: c.name, byName: c.byName, spaces: c.spaces, hosts: c.hosts, tags: c.tags}
			f.cat.Store(c)
			return c
		}
	}
	now := time.Now()
	snaps, err := f.r.Snapshots(f.ctx)
	if err != nil {
		f.log.Warn("cannot list snapshots", "err", err)
		if c == nil {
			c = newCatalog(nil, now)
		}
		return c
	}
	c = newCatalog(snaps, now)
	f.cat.Store(c)
	return c
}
