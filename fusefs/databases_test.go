package fusefs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/engram"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/pitr"
	"memento/repo/repotest"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// TestMountDatabases (issue 14): three data dirs with a space of the same
// id (host-1 has two of them, host-2 one) backed up into one repository.
// spaces/<s>/ and hosts/host-1/spaces/<s>/ show no database: a README and
// at/README name each candidate's directory, an instant under their at/ is
// ENOENT with a log line naming the candidates, and no recovery runs.
// hosts/host-2/spaces/<s>/ and hosts/host-1/identities/<id>/spaces/<s>/
// show one database each: latest and by-time/ its snapshots only, at/<T>/
// recovered with that database's identity (its own bytes).
func TestMountDatabases(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	type db struct {
		host, dd, id, marker string
		sn                   *repo.Snapshot
	}
	dbs := []*db{{host: "host-1"}, {host: "host-1"}, {host: "host-2"}}
	bySel := map[string]*db{}
	for i, d := range dbs {
		d.dd = filepath.Join(t.TempDir(), "data")
		makeTree(t, d.dd, spaceTree())
		d.marker = fmt.Sprintf("database %d on %s\n", i, d.host)
		if err := os.WriteFile(filepath.Join(d.dd, "spaces", testSpace, "marker"), []byte(d.marker), 0o644); err != nil {
			t.Fatal(err)
		}
		id, _, err := engram.EnsureIdentity(d.dd)
		if err != nil {
			t.Fatal(err)
		}
		d.id = id.Identity
		d.sn = backuptest.Backup(t, tr.Repository, backup.BackupOptions{Space: testSpace, DataDir: d.dd, Host: d.host})
		if d.sn.Identity() != d.id {
			t.Fatalf("snapshot identity %q, want %q", d.sn.Identity(), d.id)
		}
		bySel[d.id] = d
	}
	var mu sync.Mutex
	var sels []pitr.Select
	pit := func(ctx context.Context, sel pitr.Select, at int64) (*PointInTime, error) {
		mu.Lock()
		sels = append(sels, sel)
		mu.Unlock()
		d := bySel[sel.Identity]
		if d == nil || sel.Host != "" || sel.Space != testSpace {
			return nil, fmt.Errorf("recovery of %+v: not one database", sel)
		}
		return &PointInTime{Base: d.sn, Tree: d.sn.Root}, nil
	}
	_, mp, logs := mount(t, tr.Repository, Options{PointInTimeSel: pit, ParseInstant: walreplay.ParseTime})
	instant := time.Now().UTC().Format(time.RFC3339)
	ls := func(p string) []string {
		t.Helper()
		es, err := os.ReadDir(filepath.Join(mp, p))
		if err != nil {
			t.Fatalf("readdir %s: %v", p, err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(mp, p))
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return string(b)
	}
	h1a, h1b, h2 := dbs[0], dbs[1], dbs[2]
	paths := map[*db]string{
		h1a: "hosts/host-1/identities/" + h1a.id + "/spaces/" + testSpace + "/",
		h1b: "hosts/host-1/identities/" + h1b.id + "/spaces/" + testSpace + "/",
		h2:  "hosts/host-2/spaces/" + testSpace + "/",
	}

	// Ambiguous: spaces/<s>/ (three databases), hosts/host-1/spaces/<s>/ (two).
	for _, tc := range []struct {
		dir   string
		cands []*db
	}{{"spaces/" + testSpace, dbs}, {"hosts/host-1/spaces/" + testSpace, []*db{h1a, h1b}}} {
		if got := ls(tc.dir); !slices.Equal(got, []string{"README", "at"}) {
			t.Errorf("%s lists %q, want README and at", tc.dir, got)
		}
		if got := ls(tc.dir + "/at"); !slices.Equal(got, []string{"README"}) {
			t.Errorf("%s/at lists %q, want README", tc.dir, got)
		}
		for _, rel := range []string{"", "/at"} {
			readme := read(tc.dir + rel + "/README")
			t.Logf("%s%s/README:\n%s", tc.dir, rel, readme)
			if !strings.Contains(readme, "exists in more than one database") || !strings.Contains(readme, "--identity ID") {
				t.Errorf("%s%s/README does not explain:\n%s", tc.dir, rel, readme)
			}
			if !strings.Contains(readme, "mount's root, "+up("/"+tc.dir+rel)+" from here") {
				t.Errorf("%s%s/README does not say where the root is:\n%s", tc.dir, rel, readme)
			}
			for _, d := range dbs {
				// It names the candidates, and only them.
				if named := strings.Contains(readme, "\n  "+paths[d]+"  (identity "+d.id); named != slices.Contains(tc.cands, d) {
					t.Errorf("%s%s/README names %s: %v, want %v:\n%s", tc.dir, rel, paths[d], named, !named, readme)
				}
			}
			for _, d := range tc.cands {
				// The path it names is that database's directory.
				if fi, err := os.Stat(filepath.Join(mp, paths[d])); err != nil || !fi.IsDir() {
					t.Errorf("%s%s/README names %s: %v", tc.dir, rel, paths[d], err)
				}
			}
		}
		for _, p := range []string{"latest", "by-time", "timelines", "at/" + instant} {
			if _, err := os.Lstat(filepath.Join(mp, tc.dir, p)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s/%s: %v, want ENOENT", tc.dir, p, err)
			}
		}
		log := logs.String()
		t.Logf("log:\n%s", log)
		if !strings.Contains(log, "the space exists in more than one database") || !strings.Contains(log, "at="+instant) {
			t.Errorf("no log line for %s/at/%s:\n%s", tc.dir, instant, log)
		}
		for _, d := range tc.cands {
			if !strings.Contains(log, paths[d]) || !strings.Contains(log, d.id) {
				t.Errorf("the log line does not name candidate %s:\n%s", paths[d], log)
			}
		}
	}
	mu.Lock()
	if len(sels) != 0 {
		t.Errorf("an ambiguous at/ recovered %+v", sels)
	}
	mu.Unlock()

	// One database each.
	if got := ls("hosts/host-1/identities"); !slices.Equal(got, sorted(h1a.id, h1b.id)) {
		t.Errorf("hosts/host-1/identities lists %q", got)
	}
	if got := ls("hosts/host-2"); !slices.Equal(got, []string{h2.sn.ShortID(), "identities", "latest", "spaces"}) {
		t.Errorf("hosts/host-2 lists %q", got)
	}
	for _, d := range dbs {
		dir := paths[d]
		if got := ls(dir); !slices.Equal(got, []string{"at", "by-time", "latest", "timelines"}) {
			t.Errorf("%s lists %q", dir, got)
		}
		target, err := os.Readlink(filepath.Join(mp, dir, "latest"))
		if want := up("/"+strings.TrimSuffix(dir, "/")) + "snapshots/" + d.sn.ShortID(); err != nil || target != want {
			t.Errorf("%slatest -> %q, %v; want %q", dir, target, err, want)
		}
		if got, want := ls(dir+"by-time"), []string{timeName(d.sn)}; !slices.Equal(got, want) {
			t.Errorf("%sby-time lists %q, want %q", dir, got, want)
		}
		if got := read(dir + "by-time/" + timeName(d.sn) + "/spaces/" + testSpace + "/marker"); got != d.marker {
			t.Errorf("%sby-time: marker %q, want %q", dir, got, d.marker)
		}
		if got := read(dir + "at/" + instant + "/spaces/" + testSpace + "/marker"); got != d.marker {
			t.Errorf("%sat/%s: marker %q, want %q", dir, instant, got, d.marker)
		}
		readme := read(dir + "at/README")
		if !strings.Contains(readme, "--space "+testSpace+" --identity "+d.id) {
			t.Errorf("%sat/README does not name the database:\n%s", dir, readme)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var ids []string
	for _, s := range sels {
		ids = append(ids, s.Identity)
	}
	slices.Sort(ids)
	if want := sorted(h1a.id, h1b.id, h2.id); !slices.Equal(ids, want) {
		t.Errorf("recoveries of %q, want one per database %q", ids, want)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// TestCatalogDatabase: the database a spaces/<s>/ directory shows is
// chosen as the CLI chooses it: a legacy database (snapshots without an
// identity) beside one with an identity is not a second candidate; two
// with identities are ambiguous; a host filter or a pinned identity
// narrows the candidates.
func TestCatalogDatabase(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	idA, idB := strings.Repeat("a", 32), strings.Repeat("b", 32)
	n := 0
	snap := func(host, id string) *repo.Snapshot {
		n++
		sn := &repo.Snapshot{Manifest: repo.Manifest{Time: at.Add(time.Duration(n) * time.Hour), Space: "s", Host: host}}
		sn.ID[0] = byte(n)
		if id != "" {
			sn.Tags = []string{repo.IdentityTagPrefix + id}
		}
		return sn
	}
	legacy, a1, a2, b := snap("h1", ""), snap("h1", idA), snap("h1", idA), snap("h2", idB)
	ids := func(g scopedGroup) []string {
		var out []string
		for _, sn := range g.snaps {
			out = append(out, identityName(sn.Identity()))
		}
		return out
	}
	c := newCatalog([]*repo.Snapshot{legacy, a1, a2}, time.Now())
	g := c.database(dbScope{}, "s")
	if g.err != nil || !slices.Equal(ids(g), []string{idA, idA}) || g.sel != (pitr.Select{Space: "s"}) {
		t.Errorf("legacy beside %s: %v %q %+v, want %s's two snapshots, chosen as --space alone", idA, g.err, ids(g), g.sel, idA)
	}
	g = c.database(dbScope{host: "h1"}, "s")
	if g.err != nil || len(g.snaps) != 2 || g.sel.Identity != idA {
		t.Errorf("host h1: %v %q %+v", g.err, ids(g), g.sel)
	}
	g = c.database(dbScope{host: "h1", pinned: true}, "s")
	if g.err != nil || !slices.Equal(ids(g), []string{legacyName}) || g.sel.Identity != legacyName {
		t.Errorf("legacy pinned: %v %q %+v", g.err, ids(g), g.sel)
	}
	c = newCatalog([]*repo.Snapshot{legacy, a1, a2, b}, time.Now())
	g = c.database(dbScope{}, "s")
	if !errors.Is(g.err, walarchive.ErrAmbiguous) || len(g.snaps) != 0 || len(g.cands) != 3 {
		t.Errorf("two identities: %v %q %d candidates, want ErrAmbiguous and nothing shown", g.err, ids(g), len(g.cands))
	}
	if g := c.database(dbScope{host: "h2"}, "s"); g.err != nil || !slices.Equal(ids(g), []string{idB}) {
		t.Errorf("host h2: %v %q", g.err, ids(g))
	}
	if g := c.database(dbScope{host: "h3"}, "s"); g.err != nil || len(g.snaps) != 0 {
		t.Errorf("host h3: %v %q", g.err, ids(g))
	}
	// h1's database is idA's (its legacy one is no second candidate).
	if got := c.databasePaths(dbScope{}, "s"); len(got) != 3 || got[0] != "hosts/h1/identities/legacy/spaces/s/  (identity (legacy), host h1)" ||
		got[1] != "hosts/h1/spaces/s/  (identity "+idA+", host h1)" || got[2] != "hosts/h2/spaces/s/  (identity "+idB+", host h2)" {
		t.Errorf("databasePaths = %q", got)
	}
}
