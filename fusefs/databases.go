package fusefs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"

	"memento/repo"
	"memento/repo/pitr"
	"memento/repo/walarchive"
)

// A space is addressed by (database identity, space id) (docs/pitr.md,
// "Timelines"): two data dirs with a space of the same id are two
// databases, and no directory of the mount combines them.
//
//	spaces/<s>/                                   the only database that has s
//	hosts/<h>/spaces/<s>/                         the only database of host h that has s
//	hosts/<h>/identities/<id>/spaces/<s>/         database <id> (as host h backed it up)
//
// Each holds latest, by-time/, at/ and timelines/ of that one database. The
// database of spaces/<s>/ and hosts/<h>/spaces/<s>/ is chosen among those
// whose snapshots are listed as `--space S` (and `--host H`) choose it on
// the command line (walarchive.ChooseDatabase: a legacy database beside
// one with an identity is not a second candidate); when there are several,
// the directory holds only a README naming each candidate's directory, and
// an at/ whose instants are not recovered (a log line names the
// candidates). <id> is the identity's 32 hex digits, or "legacy" for
// snapshots taken before data dirs had one (`--identity legacy`).

// legacyName names the legacy database under identities/.
const legacyName = "legacy"

// identityName is the directory name of an identity under identities/.
func identityName(id string) string {
	if id == "" {
		return legacyName
	}
	return id
}

// dbScope says which snapshots a directory of spaces shows.
type dbScope struct {
	base     string // the mount path of the spaces directory: /spaces, /hosts/<h>/spaces, ...
	host     string // "": every host
	identity string // with pinned: the database's identity ("" legacy)
	pinned   bool
}

// scopedGroup is what one spaces/<s>/ directory shows: the snapshots of
// its database (oldest first) and how a recovery names the database.
type scopedGroup struct {
	snaps []*repo.Snapshot
	sel   pitr.Select
	// err says why the directory shows no database: several candidates
	// (walarchive.ErrAmbiguous), listed in cands.
	err   error
	cands []walarchive.Database
}

// database returns the database sc shows of space in catalog c.
func (c *catalog) database(sc dbScope, space string) scopedGroup {
	var group []*repo.Snapshot
	for _, sn := range c.spaces[space] {
		if (sc.host == "" || sn.Host == sc.host) && (!sc.pinned || sn.Identity() == sc.identity) {
			group = append(group, sn)
		}
	}
	g := scopedGroup{sel: pitr.Select{Space: space}}
	if len(group) == 0 {
		return g
	}
	id := sc.identity
	if !sc.pinned {
		var err error
		dbs := snapshotDatabases(group)
		if id, err = walarchive.ChooseDatabase(space, "", dbs); err != nil {
			g.err, g.cands = err, dbs
			return g
		}
	}
	for _, sn := range group {
		if sn.Identity() == id {
			g.snaps = append(g.snaps, sn)
		}
	}
	if sc.host != "" || sc.pinned {
		// A database of its own: recover it, whatever else has the space.
		g.sel.Identity = identityName(id)
	}
	return g
}

// snapshotDatabases lists the databases of a space's snapshots, sorted by
// identity, with the host of each one's newest snapshot.
func snapshotDatabases(group []*repo.Snapshot) []walarchive.Database {
	by := map[string]*walarchive.Database{}
	for _, sn := range group {
		id := sn.Identity()
		d := by[id]
		if d == nil {
			d = &walarchive.Database{Identity: id}
			by[id] = d
		}
		if !sn.Time.Before(d.Seen) {
			d.Seen, d.Host = sn.Time, sn.Host
		}
	}
	out := make([]walarchive.Database, 0, len(by))
	for _, d := range by {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b walarchive.Database) int { return strings.Compare(a.Identity, b.Identity) })
	return out
}

// databasePaths lists, for each database of sc that has space, the
// directories showing it (relative to the mount's root, ending in /), for
// a README or a log line: hosts/<h>/spaces/<s>/ when it is host h's only
// database with the space, else hosts/<h>/identities/<id>/spaces/<s>/.
func (c *catalog) databasePaths(sc dbScope, space string) []string {
	type key struct{ host, id string }
	seen := map[key]bool{}
	var out []string
	for _, sn := range c.spaces[space] {
		k := key{sn.Host, sn.Identity()}
		if seen[k] || repo.ValidName(sn.Host) != nil || sc.host != "" && sn.Host != sc.host {
			continue
		}
		seen[k] = true
		p := "hosts/" + sn.Host + "/identities/" + identityName(k.id) + "/spaces/" + space + "/"
		if g := c.database(dbScope{host: sn.Host}, space); g.err == nil && len(g.snaps) > 0 && g.snaps[0].Identity() == k.id {
			p = "hosts/" + sn.Host + "/spaces/" + space + "/"
		}
		out = append(out, fmt.Sprintf("%s  (identity %s, host %s)", p, walarchive.IdentityLabel(k.id), sn.Host))
	}
	slices.Sort(out)
	return out
}

// selNS is the inode namespace of the generated entries below a space's
// at/ and timelines/: "v" as every generated entry for spaces/<s>/, and
// one of each database's own below hosts/, so that go-fuse (which keeps the
// node first made for a number) never serves one database's at/ for
// another's when a host's database changes.
func selNS(sel pitr.Select) string {
	if sel.Identity == "" && sel.Host == "" {
		return "v"
	}
	return "v:" + sel.Identity + "/" + sel.Host
}

// up is the relative path from dir (a mount path) back to the root.
func up(dir string) string {
	return strings.Repeat("../", strings.Count(dir, "/"))
}

// listScopedSpaces lists a spaces directory of scope sc: a directory per
// space its snapshots have.
func (f *FS) listScopedSpaces(c *catalog, sc dbScope) []genEntry {
	seen := map[string]bool{}
	var es []genEntry
	for space, group := range c.spaces {
		for _, sn := range group {
			if (sc.host == "" || sn.Host == sc.host) && (!sc.pinned || sn.Identity() == sc.identity) {
				seen[space] = true
				break
			}
		}
	}
	for space := range seen {
		es = append(es, f.dirEntry(sc.base+"/"+space, space, true, func(c *catalog) []genEntry {
			return f.listSpace(c, sc, space)
		}))
	}
	return es
}

// hostDatabaseEntries are hosts/<h>/spaces/ and hosts/<h>/identities/,
// when host h has snapshots of spaces.
func (f *FS) hostDatabaseEntries(c *catalog, host string) []genEntry {
	if !slices.ContainsFunc(c.hosts[host], func(sn *repo.Snapshot) bool { return sn.Space != "" }) {
		return nil
	}
	base := "/hosts/" + host
	return []genEntry{
		f.dirEntry(base+"/spaces", "spaces", true, func(c *catalog) []genEntry {
			return f.listScopedSpaces(c, dbScope{base: base + "/spaces", host: host})
		}),
		f.dirEntry(base+"/identities", "identities", true, func(c *catalog) []genEntry {
			ids := map[string]bool{}
			for _, sn := range c.hosts[host] {
				if sn.Space != "" {
					ids[sn.Identity()] = true
				}
			}
			var es []genEntry
			for id := range ids {
				name := identityName(id)
				dir := base + "/identities/" + name
				sc := dbScope{base: dir + "/spaces", host: host, identity: id, pinned: true}
				spaces := f.dirEntry(sc.base, "spaces", true, func(c *catalog) []genEntry { return f.listScopedSpaces(c, sc) })
				es = append(es, f.dirEntry(dir, name, true, func(c *catalog) []genEntry { return []genEntry{spaces} }))
			}
			return es
		}),
	}
}

// An ambiguous spaces/<s>/ holds this README, and at/ holds it too.
const ambiguousReadme = `Space %[1]s exists in more than one database%[2]s.
This directory does not show it, as their snapshots and points in time
would mix. Each database (an Engram data dir) has its own directory
(relative to the mount's root, %[3]s from here):

%[4]s
On the command line, choose one the same way: --identity ID (or --host H
when that is unambiguous), e.g. 'memento pitr ranges --space %[1]s --identity ID'.
`

// ambiguousEntries are the entries of a spaces/<s>/ directory that shows
// no database because several have the space.
func (f *FS) ambiguousEntries(sc dbScope, space string) []genEntry {
	dir := sc.base + "/" + space
	where := " in this repository"
	if sc.host != "" {
		where = " of host " + sc.host
	}
	text := func(from string) func(ctx context.Context) []byte {
		return func(ctx context.Context) []byte {
			c := f.age(listingAge)
			var list strings.Builder
			for _, p := range c.databasePaths(sc, space) {
				fmt.Fprintf(&list, "  %s\n", p)
			}
			return fmt.Appendf(nil, ambiguousReadme, space, where, up(from), list.String())
		}
	}
	// Inode numbers of their own: go-fuse keeps the node first made for a
	// number, and the at/ of a database must not serve this one, nor the
	// reverse, when the space gains or loses a database.
	readme := f.textFileEntry(inoFor("ambiguous", dir+"/README"), "README", text(dir))
	atReadme := f.textFileEntry(inoFor("ambiguous", dir+"/at/README"), "README", text(dir+"/at"))
	ino := inoFor("ambiguous", dir+"/at")
	at := genEntry{name: "at", mode: syscall.S_IFDIR, ino: ino, build: func() fs.InodeEmbedder {
		return &genDir{f: f, ino: ino, dynamic: true, static: []genEntry{atReadme}, extra: func(ctx context.Context, name string) (genEntry, syscall.Errno) {
			if f.opts.ParseInstant == nil {
				return genEntry{}, syscall.ENOENT
			}
			if _, err := f.opts.ParseInstant(name); err != nil {
				return genEntry{}, syscall.ENOENT
			}
			c := f.age(missAge)
			g := c.database(sc, space)
			if g.err == nil {
				// No longer ambiguous (snapshots were forgotten): the
				// directory is listed again as the database's.
				return genEntry{}, syscall.ENOENT
			}
			f.log.Warn("point in time cannot be recovered: the space exists in more than one database; look under one database's directory",
				"space", space, "at", name, "dir", strings.TrimPrefix(dir, "/"), "candidates", strings.Join(c.databasePaths(sc, space), "; "), "err", g.err)
			return genEntry{}, syscall.ENOENT
		}}
	}}
	return []genEntry{readme, at}
}
