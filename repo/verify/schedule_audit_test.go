package verify_test

// TestAuditTrailAndVerifiedLevels and TestPlanSchedule test this package's
// VerifiedLevels and PlanSchedule; copied from repo's check_test.go (owned by
// the check move) when verification left package repo.

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/verify"
)

func TestAuditTrailAndVerifiedLevels(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := []repo.AuditRecord{
		{Time: t0, Command: "verify", Snapshot: "a", Level: "L2", Result: repo.AuditOK},
		{Time: t0.Add(time.Minute), Command: "verify", Snapshot: "b", Level: "L4", Result: repo.AuditOK},
		{Time: t0.Add(2 * time.Minute), Command: "verify", Snapshot: "b", Level: "L1", Result: repo.AuditFailed, Error: "x"},
		{Time: t0.Add(3 * time.Minute), Command: "verify", Snapshot: "c", Level: "L3", Result: repo.AuditOK, Subset: "1/10"},
		{Time: t0.Add(4 * time.Minute), Command: "backup", Snapshot: "d", Result: repo.AuditOK},
	}
	for _, rec := range recs {
		if _, err := tr.AppendAudit(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	got, bad, err := tr.AuditLog(ctx, t0.Add(30*time.Second))
	if err != nil || len(bad) != 0 || len(got) != 4 || got[0].Snapshot != "b" || got[0].Host == "" || got[0].Version != 1 || got[3].Command != "backup" {
		t.Fatalf("audit log since: %+v %v %v", got, bad, err)
	}
	all, _, _ := tr.AuditLog(ctx, time.Time{})
	lv := verify.VerifiedLevels(all)
	if lv["a"] != verify.L2 || lv["b"] != 0 || lv["c"] != verify.L1 || lv["d"] != 0 {
		t.Fatalf("verified levels %v", lv)
	}
	// A damaged record is reported, never returned.
	p := filepath.Join(tr.Dir, filepath.FromSlash(all[0].File))
	b, _ := os.ReadFile(p)
	b[10] ^= 1
	os.Chmod(p, 0o644)
	os.WriteFile(p, b, 0o644)
	got, bad, err = tr.AuditLog(ctx, time.Time{})
	if err != nil || len(got) != 4 || len(bad) != 1 || !errors.Is(bad[0], repo.ErrCorrupt) {
		t.Fatalf("after damage: %d records, %v, %v", len(got), bad, err)
	}
}

func TestPlanSchedule(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	mk := func(b byte, space string, age time.Duration) *repo.Snapshot {
		return &repo.Snapshot{ID: chunk.ID{b}, Manifest: repo.Manifest{Space: space, Time: now.Add(-age)}}
	}
	snaps := []*repo.Snapshot{mk(1, "a", 72*time.Hour), mk(2, "b", 48*time.Hour), mk(3, "a", 2*time.Hour), mk(4, "b", time.Hour), mk(5, "a", time.Minute)}
	rec := func(sn *repo.Snapshot, slot string, ago time.Duration) repo.AuditRecord {
		return repo.AuditRecord{Command: "verify", Snapshot: sn.ID.String(), Schedule: slot, Time: now.Add(-ago), Result: repo.AuditOK, Level: "L1"}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		recs []repo.AuditRecord
		want map[string][]byte // slot -> snapshot first bytes
	}{
		{"nothing ever run", nil, map[string][]byte{verify.SlotNew: {1, 2, 3, 4, 5}, verify.SlotHourly: {5, 4}, verify.SlotDaily: nil, verify.SlotWeekly: {1, 2}}},
		{"all recent", []repo.AuditRecord{rec(snaps[0], verify.SlotNew, time.Hour), rec(snaps[1], verify.SlotNew, time.Hour), rec(snaps[2], verify.SlotNew, time.Hour),
			rec(snaps[3], verify.SlotNew, time.Hour), rec(snaps[4], verify.SlotHourly, 30*time.Minute), rec(snaps[0], verify.SlotDaily, 3*time.Hour),
			rec(snaps[0], verify.SlotWeekly, 24*time.Hour)}, map[string][]byte{}},
		{"hourly due, new snapshot", []repo.AuditRecord{rec(snaps[0], verify.SlotNew, time.Hour), rec(snaps[1], verify.SlotNew, time.Hour), rec(snaps[2], verify.SlotNew, time.Hour),
			rec(snaps[3], verify.SlotHourly, 61*time.Minute), rec(snaps[0], verify.SlotDaily, 3*time.Hour), rec(snaps[0], verify.SlotWeekly, 8*24*time.Hour)},
			map[string][]byte{verify.SlotNew: {5}, verify.SlotHourly: {5, 4}, verify.SlotWeekly: {1, 2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tasks := verify.PlanSchedule(now, snaps, c.recs, verify.DefaultSchedule, rng)
			got := map[string][]byte{}
			for _, task := range tasks {
				var b []byte
				for _, id := range task.Snapshots {
					b = append(b, id[0])
				}
				got[task.Slot] = b
				if task.Slot == verify.SlotDaily && len(task.Snapshots) != 1 { // 10 % of 5, at least one
					t.Errorf("daily sample of %d snapshots", len(task.Snapshots))
				}
			}
			for slot, want := range c.want {
				if slot == verify.SlotDaily {
					if _, ok := got[slot]; !ok {
						t.Errorf("daily L3 not planned")
					}
					continue
				}
				if !slices.Equal(got[slot], want) {
					t.Errorf("slot %s: %v, want %v (all %v)", slot, got[slot], want, got)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("planned %v, want %v", got, c.want)
			}
		})
	}
}
