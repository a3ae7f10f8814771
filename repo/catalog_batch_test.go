package repo

import (
	"context"
	"slices"
	"testing"
	"time"

	"memento/chunk"
)

// TestDeferCatalog: while a DeferCatalog is open, saved snapshots reach the
// local catalog only when flushed, or when a read in this process needs
// them (LatestSnapshot of their space, a listing); a process that stops
// before the flush leaves them to the next Open, whose Sync adds them from
// snapshots/.
func TestDeferCatalog(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	save := func(space string, at time.Time) *Snapshot {
		t.Helper()
		sn, err := tr.SaveSnapshot(ctx, &Manifest{Time: at.UTC(), Host: "h", Space: space,
			Paths: []string{"/d/spaces/" + space}, Root: chunk.ID{1}})
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	cached := func() []string {
		t.Helper()
		ids, err := tr.ix.SnapshotIDs()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	t0 := time.Now()
	flush := tr.DeferCatalog()
	a := save("sa", t0)
	b := save("sb", t0.Add(time.Second))
	if got := cached(); len(got) != 0 {
		t.Fatalf("catalog holds %v before the flush, want nothing", got)
	}
	// Another space's latest needs neither entry: nothing is written.
	if _, err := tr.LatestSnapshot(ctx, "sc"); err == nil {
		t.Fatal("LatestSnapshot of a space without snapshots: no error")
	}
	if got := cached(); len(got) != 0 {
		t.Fatalf("catalog holds %v after a read of another space, want nothing", got)
	}
	// The space's own latest does: both entries go in together.
	got, err := tr.LatestSnapshot(ctx, "sa")
	if err != nil || got.ID != a.ID {
		t.Fatalf("LatestSnapshot(sa) = %v, %v, want %s", got, err, a.ShortID())
	}
	want := []string{a.ID.String(), b.ID.String()}
	slices.Sort(want)
	if got := cached(); !slices.Equal(got, want) {
		t.Fatalf("catalog %v, want %v", got, want)
	}
	latest, err := tr.LatestSnapshotIDs([]string{"sa", "sb", "sc"})
	if err != nil || len(latest) != 2 || latest["sa"] != a.ID || latest["sb"] != b.ID {
		t.Fatalf("LatestSnapshotIDs = %v, %v", latest, err)
	}

	// Saved, never flushed: the process stops here.
	c := save("sa", t0.Add(2*time.Second))
	if ids := cached(); slices.Contains(ids, c.ID.String()) {
		t.Fatal("catalog holds a deferred entry")
	}
	next, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatal(err)
	}
	got, err = next.LatestSnapshot(ctx, "sa")
	if err != nil || got.ID != c.ID {
		t.Fatalf("the next process's LatestSnapshot(sa) = %v, %v, want %s", got, err, c.ShortID())
	}
	// The late flush puts the same entry again: no error, nothing doubled.
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	all, err := tr.Snapshots(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("%d snapshots listed, %v; want 3", len(all), err)
	}
	// No DeferCatalog open: a save goes to the catalog at once.
	d := save("sb", t0.Add(3*time.Second))
	if !slices.Contains(cached(), d.ID.String()) {
		t.Fatal("a snapshot saved after the flush is not in the catalog")
	}
}

// TestDeferCatalogForgottenMeanwhile: a snapshot another process forgets
// while this one still holds its catalog entry (a `forget` beside a
// `backup --all`, whose LockManifests' Sync saw the snapshot in
// snapshots/) is put into the shared catalog again by the late flush; the
// next Open's Sync drops it, so no later command lists it, picks it as a
// parent or restores it, and the snapshot before it is the latest again
// (session 25's review of DeferCatalog).
func TestDeferCatalogForgottenMeanwhile(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	t0 := time.Now()
	save := func(at time.Time) *Snapshot {
		t.Helper()
		sn, err := tr.SaveSnapshot(ctx, &Manifest{Time: at.UTC(), Host: "h", Space: "sa",
			Paths: []string{"/d/spaces/sa"}, Root: chunk.ID{1}})
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	old := save(t0)
	flush := tr.DeferCatalog()
	cur := save(t0.Add(time.Second))
	other, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := other.LatestSnapshot(ctx, "sa"); err != nil || got.ID != cur.ID {
		t.Fatalf("the other process's LatestSnapshot = %v, %v, want %s (its Open's Sync)", got, err, cur.ShortID())
	}
	// The other process forgets cur, as maintenance.Forget does.
	if err := other.Backend().Delete(ctx, FileName(DirSnapshots, cur.ID)); err != nil {
		t.Fatal(err)
	}
	if err := other.Index().DeleteSnapshot(cur.ID.String()); err != nil {
		t.Fatal(err)
	}
	if err := flush(); err != nil {
		t.Fatal(err)
	}
	next, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := next.LatestSnapshot(ctx, "sa"); err != nil || got.ID != old.ID {
		t.Fatalf("after the late flush, the next process's LatestSnapshot = %v, %v, want %s", got, err, old.ShortID())
	}
	all, err := next.Snapshots(ctx)
	if err != nil || len(all) != 1 || all[0].ID != old.ID {
		t.Fatalf("the next process lists %d snapshots (%v), want only %s", len(all), err, old.ShortID())
	}
	latest, err := next.LatestSnapshotIDs([]string{"sa"})
	if err != nil || latest["sa"] != old.ID {
		t.Fatalf("LatestSnapshotIDs = %v, %v, want sa: %s", latest, err, old.ShortID())
	}
}
