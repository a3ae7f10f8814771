package repo

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"memento/chunk"
)

// TestSnapshotListingsAgree: SnapshotsOf(space) is Snapshots' snapshots of
// that space in the same order, LatestPerSpace the last of each space,
// SnapshotHeads their IDs, times and spaces, and FindSnapshot resolves
// "latest", a full ID and a unique prefix from the heads alone — also for
// snapshots still queued in a deferred catalog.
func TestSnapshotListingsAgree(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	save := func(space string, at time.Time) *Snapshot {
		t.Helper()
		m := &Manifest{Time: at.UTC(), Host: "h", Space: space, Root: chunk.ID{1}}
		if space != "" {
			m.Paths = []string{"/d/spaces/" + space}
		} else {
			m.Paths = []string{"/p"}
		}
		sn, err := tr.SaveSnapshot(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return sn
	}
	t0 := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	for i := range 12 {
		save([]string{"sa", "sb", "sc", ""}[i%4], t0.Add(time.Duration(i%5)*time.Second))
	}
	flush := tr.DeferCatalog()
	queued := save("sb", t0.Add(time.Minute)) // newest of all, in the queue only
	defer func() {
		if err := flush(); err != nil {
			t.Error(err)
		}
	}()
	all, err := tr.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 13 || all[12].ID != queued.ID {
		t.Fatalf("Snapshots: %d, last %s; want 13 ending with the queued %s", len(all), all[len(all)-1].ShortID(), queued.ShortID())
	}
	ids := func(sns []*Snapshot) []chunk.ID {
		out := make([]chunk.ID, len(sns))
		for i, sn := range sns {
			out[i] = sn.ID
		}
		return out
	}
	var newest []chunk.ID
	for _, space := range []string{"", "sa", "sb", "sc", "sd"} {
		var want []*Snapshot
		for _, sn := range all {
			if sn.Space == space {
				want = append(want, sn)
			}
		}
		got, err := tr.SnapshotsOf(ctx, space)
		if err != nil || !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("SnapshotsOf(%q) = %v, %v; want %v", space, ids(got), err, ids(want))
		}
		for i := range got {
			if got[i].Time != want[i].Time || got[i].Space != space {
				t.Fatalf("SnapshotsOf(%q)[%d] = %+v, want %+v", space, i, got[i].Manifest, want[i].Manifest)
			}
		}
		if space != "" && len(want) > 0 {
			newest = append(newest, want[len(want)-1].ID)
		}
	}
	latest, err := tr.LatestPerSpace(ctx)
	if err != nil || !slices.Equal(ids(latest), newest) {
		t.Fatalf("LatestPerSpace = %v, %v; want %v", ids(latest), err, newest)
	}
	heads, err := tr.SnapshotHeads(ctx)
	if err != nil || len(heads) != len(all) {
		t.Fatalf("SnapshotHeads: %d, %v; want %d", len(heads), err, len(all))
	}
	for i, h := range heads {
		if h.ID != all[i].ID.String() || !h.Time.Equal(all[i].Time) || h.Space != all[i].Space {
			t.Fatalf("SnapshotHeads[%d] = %+v, Snapshots has %s", i, h, all[i].ShortID())
		}
	}
	for _, ref := range []string{"latest", "LATEST", queued.ID.String(), queued.ID.String()[:12]} {
		sn, err := tr.FindSnapshot(ctx, ref)
		if err != nil || sn.ID != queued.ID {
			t.Fatalf("FindSnapshot(%s) = %v, %v; want %s", ref, sn, err, queued.ShortID())
		}
	}
	if _, err := tr.FindSnapshot(ctx, "ffffffffffff"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindSnapshot of an unknown prefix: %v, want ErrNotFound", err)
	}
}
