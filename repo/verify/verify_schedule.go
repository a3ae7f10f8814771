package verify

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"memento/chunk"
	"memento/repo"
)

// SchedulePolicy is what `memento verify --schedule` does when a timer calls
// it every few minutes. What it last did is read from the audit trail (each
// verification it runs is recorded with the slot's name), so the policy's
// memory lives in the repository and any host can take over.
type SchedulePolicy struct {
	// Every new snapshot (no verify record yet) gets L1.
	// Every L2Every, the latest snapshot of each space (and of each set of paths) gets L2.
	L2Every time.Duration
	// Every L3Every, a random L3Share of all snapshots (at least one) gets L3.
	L3Every time.Duration
	L3Share float64
	// Every L4Every, the oldest snapshot kept of each space gets L4.
	L4Every time.Duration
}

// DefaultSchedule is the policy operators asked for: every backup L1, hourly
// L2 on the latest, daily L3 on a random 10 %, weekly L4 on the oldest kept.
var DefaultSchedule = SchedulePolicy{L2Every: time.Hour, L3Every: 24 * time.Hour, L3Share: 0.10, L4Every: 7 * 24 * time.Hour}

// Schedule slot names, recorded in repo.AuditRecord.Schedule.
const (
	SlotNew    = "new-l1"
	SlotHourly = "latest-l2"
	SlotDaily  = "sample-l3"
	SlotWeekly = "oldest-l4"
)

// ScheduledTask is one verification the policy says is due now.
type ScheduledTask struct {
	Slot      string     `json:"slot"`
	Level     Level      `json:"level"`
	Snapshots []chunk.ID `json:"snapshots"`
	Reason    string     `json:"reason"`
}

// PlanSchedule decides what is due at now, given the snapshots (oldest
// first) and the audit trail. rng picks the L3 sample.
func PlanSchedule(now time.Time, snaps []*repo.Snapshot, recs []repo.AuditRecord, p SchedulePolicy, rng *rand.Rand) []ScheduledTask {
	if len(snaps) == 0 {
		return nil
	}
	verified := map[string]bool{}
	lastSlot := map[string]time.Time{}
	for _, rec := range recs {
		if rec.Command != "verify" {
			continue
		}
		verified[rec.Snapshot] = true
		if rec.Schedule != "" && rec.Time.After(lastSlot[rec.Schedule]) {
			lastSlot[rec.Schedule] = rec.Time
		}
	}
	due := func(slot string, every time.Duration) (bool, string) {
		t, ok := lastSlot[slot]
		if !ok {
			return true, "never run"
		}
		if now.Sub(t) >= every {
			return true, "last run " + now.Sub(t).Round(time.Minute).String() + " ago"
		}
		return false, ""
	}
	var tasks []ScheduledTask
	var fresh []chunk.ID
	for _, sn := range snaps {
		if !verified[sn.ID.String()] {
			fresh = append(fresh, sn.ID)
		}
	}
	if len(fresh) > 0 {
		tasks = append(tasks, ScheduledTask{Slot: SlotNew, Level: L1, Snapshots: fresh, Reason: "new snapshots never verified"})
	}
	latest, oldest := map[string]*repo.Snapshot{}, map[string]*repo.Snapshot{}
	var groups []string
	for _, sn := range snaps {
		g := scheduleGroup(sn)
		if oldest[g] == nil {
			oldest[g] = sn
			groups = append(groups, g)
		}
		latest[g] = sn
	}
	sort.Strings(groups)
	if ok, why := due(SlotHourly, p.L2Every); ok {
		t := ScheduledTask{Slot: SlotHourly, Level: L2, Reason: why}
		for _, g := range groups {
			t.Snapshots = append(t.Snapshots, latest[g].ID)
		}
		tasks = append(tasks, t)
	}
	if ok, why := due(SlotDaily, p.L3Every); ok {
		n := max(1, int(math.Ceil(p.L3Share*float64(len(snaps)))))
		t := ScheduledTask{Slot: SlotDaily, Level: L3, Reason: why}
		for _, i := range rng.Perm(len(snaps))[:n] {
			t.Snapshots = append(t.Snapshots, snaps[i].ID)
		}
		tasks = append(tasks, t)
	}
	if ok, why := due(SlotWeekly, p.L4Every); ok {
		t := ScheduledTask{Slot: SlotWeekly, Level: L4, Reason: why}
		for _, g := range groups {
			t.Snapshots = append(t.Snapshots, oldest[g].ID)
		}
		tasks = append(tasks, t)
	}
	return tasks
}

// scheduleGroup is what "the latest" and "the oldest" are taken per: a
// space, or one set of backed-up paths.
func scheduleGroup(sn *repo.Snapshot) string {
	if sn.Space != "" {
		return "space:" + sn.Space
	}
	return "paths:" + strings.Join(sn.Paths, "\x00")
}

// AuditRecord is the audit record of one verdict; slot names the schedule
// slot (SlotNew...) that ran it, "" for a verification asked by hand.
func (vd *Verdict) AuditRecord(slot string) repo.AuditRecord {
	rec := repo.AuditRecord{Command: "verify", Snapshot: vd.Snapshot, Space: vd.Space, Level: vd.Level.String(),
		Result: repo.AuditOK, Subset: vd.Subset, Schedule: slot, Figures: repo.Figures{"seconds": repo.Float(vd.Seconds)}}
	for _, k := range []string{"bytes_read", "chunks_verified", "files_hashed", "l2_mb_per_s", "packs", "files"} {
		if v, ok := vd.Figures[k]; ok {
			rec.Figures[k] = repo.Float(v)
		}
	}
	if !vd.Passed {
		rec.Result = repo.AuditFailed
		rec.Figures["findings"] = repo.Int(len(vd.Findings))
		rec.Figures["failed_at_level"] = repo.Int(vd.FirstLevel())
		if len(vd.Findings) > 0 {
			rec.Error = vd.Findings[0].String()
		}
	}
	return rec
}
