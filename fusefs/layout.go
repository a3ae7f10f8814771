package fusefs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"

	"memento/repo"
)

// rootDir is the top level: four directories that never change.
func (f *FS) rootDir() *genDir {
	hosts := func(c *catalog) map[string][]*repo.Snapshot { return c.hosts }
	tags := func(c *catalog) map[string][]*repo.Snapshot { return c.tags }
	return &genDir{f: f, ino: 1, static: sortEntries([]genEntry{
		f.dirEntry("/snapshots", "snapshots", true, f.listSnapshots),
		f.dirEntry("/spaces", "spaces", true, f.listSpaces),
		f.dirEntry("/hosts", "hosts", true, func(c *catalog) []genEntry { return f.listGroups(c, "hosts", hosts, f.hostDatabaseEntries) }),
		f.dirEntry("/tags", "tags", true, func(c *catalog) []genEntry { return f.listGroups(c, "tags", tags, nil) }),
	})}
}

// latestLink is a "latest" symlink: its target is looked up on every
// readlink in a catalog no older than the refresh interval, so that it
// follows new backups; up is the way back to the top level.
func (f *FS) latestLink(path, up string, group func(*catalog) []*repo.Snapshot) genEntry {
	return f.linkEntry(path, "latest", func() string {
		c := f.age(listingAge)
		if l := latest(group(c)); l != nil {
			return up + c.name[l.ID]
		}
		return ""
	})
}

// listSnapshots lists snapshots/: one directory per snapshot and latest.
func (f *FS) listSnapshots(c *catalog) []genEntry {
	es := make([]genEntry, 0, len(c.snaps)+1)
	for _, sn := range c.snaps {
		es = append(es, f.snapshotEntry(sn, c.name[sn.ID]))
	}
	if len(c.snaps) > 0 {
		es = append(es, f.latestLink("/snapshots/latest", "", func(c *catalog) []*repo.Snapshot { return c.snaps }))
	}
	return es
}

// snapshotEntry is snapshots/<name>: the root of a snapshot's tree.
func (f *FS) snapshotEntry(sn *repo.Snapshot, name string) genEntry {
	ino := inoFor(sn.ID.String(), "/")
	return genEntry{name: name, mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
		return &treeDir{f: f, snap: &snapRef{f: f, id: sn.ID, name: name, space: sn.Space, time: sn.Time}, ino: ino, path: "/"}
	}}
}

// listSpaces lists spaces/: one directory per space with snapshots.
func (f *FS) listSpaces(c *catalog) []genEntry {
	return f.listScopedSpaces(c, dbScope{base: "/spaces"})
}

// listSpace lists <spaces>/<space>/ of scope sc (spaces/<space>/,
// hosts/<h>/spaces/<space>/, ...): latest, by-time/, at/ and timelines/ of
// its one database, or a README and at/ naming the candidates when several
// databases have the space (databases.go).
func (f *FS) listSpace(c *catalog, sc dbScope, space string) []genEntry {
	g := c.database(sc, space)
	if g.err != nil {
		return f.ambiguousEntries(sc, space)
	}
	if len(g.snaps) == 0 {
		return nil
	}
	dir := sc.base + "/" + space
	return []genEntry{
		f.latestLink(dir+"/latest", up(dir)+"snapshots/", func(c *catalog) []*repo.Snapshot { return c.database(sc, space).snaps }),
		f.dirEntry(dir+"/by-time", "by-time", true, func(c *catalog) []genEntry { return f.listByTime(c, sc, space) }),
		f.atEntry(g.sel, dir+"/at"),
		f.timelinesEntry(g.sel, dir),
	}
}

// listByTime lists <space>/by-time/: a link per snapshot, named by its time.
func (f *FS) listByTime(c *catalog, sc dbScope, space string) []genEntry {
	group := c.database(sc, space).snaps
	dir := sc.base + "/" + space + "/by-time"
	es := make([]genEntry, 0, len(group))
	seen := make(map[string]bool, len(group))
	for _, sn := range group {
		name := timeName(sn)
		if seen[name] {
			name += "-" + c.name[sn.ID] // two snapshots in the same nanosecond
		}
		seen[name] = true
		target := up(dir) + "snapshots/" + c.name[sn.ID]
		es = append(es, f.linkEntry(dir+"/"+name, name, func() string { return target }))
	}
	return es
}

// listGroups lists hosts/ or tags/: a directory per host or tag, holding a
// link per snapshot and latest, and what more adds (a host's spaces).
func (f *FS) listGroups(c *catalog, kind string, groups func(*catalog) map[string][]*repo.Snapshot, more func(c *catalog, g string) []genEntry) []genEntry {
	gs := groups(c)
	es := make([]genEntry, 0, len(gs))
	for g := range gs {
		base := "/" + kind + "/" + g
		member := func(c *catalog) []*repo.Snapshot { return groups(c)[g] }
		es = append(es, f.dirEntry(base, g, true, func(c *catalog) []genEntry {
			group := member(c)
			out := make([]genEntry, 0, len(group)+1)
			for _, sn := range group {
				name := c.name[sn.ID]
				target := "../../snapshots/" + name
				out = append(out, f.linkEntry(base+"/"+name, name, func() string { return target }))
			}
			if len(group) > 0 {
				out = append(out, f.latestLink(base+"/latest", "../../snapshots/", member))
			}
			if more != nil {
				out = append(out, more(c, g)...)
			}
			return out
		}))
	}
	return es
}
