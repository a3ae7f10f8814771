package repo

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"memento/chunk"
)

func TestCheckIntactRepositoryIsClean(t *testing.T) {
	fx := newSpaceFixture(t, 128<<10)
	for _, readData := range []bool{false, true} {
		rep, err := fx.tr.Check(context.Background(), CheckOptions{ReadData: readData})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Findings) != 0 || rep.Errors() != 0 {
			t.Fatalf("read-data %v: findings on an intact repository: %+v", readData, rep.Findings)
		}
		if rep.Figures["snapshots"] != 2 || rep.Figures["snapshots_intact"] != 2 || rep.Figures["packs"] < 2 {
			t.Errorf("figures %v", rep.Figures)
		}
		if readData && rep.Figures["bytes_read"] == 0 {
			t.Error("--read-data read nothing")
		}
	}
}

// The scenario of the issue: the local bbolt index and one pack are lost.
// check --repair rebuilds the index from the remaining packs, marks the
// snapshot that needed the pack as damaged (listing what is lost), and
// everything else restores byte for byte.
func TestCheckRepairAfterLosingIndexAndPack(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{PackSize: 64 << 10})
	srcA := filepath.Join(t.TempDir(), "a")
	writeFile(t, filepath.Join(srcA, "victim"), randomBytes(21, 500<<10), 0o644)
	writeFile(t, filepath.Join(srcA, "fine"), []byte("this file survives"), 0o644)
	srcB := filepath.Join(t.TempDir(), "b")
	writeFile(t, filepath.Join(srcB, "other"), randomBytes(22, 400<<10), 0o644)
	snA := tr.backup(t, BackupOptions{Paths: []string{srcA}})
	snB := tr.backup(t, BackupOptions{Paths: []string{srcB}})
	wantB := digestTree(t, srcB)

	n := tr.nodeAt(t, snA, "a/victim")
	locs, err := tr.Locate("", n.Content[:1])
	if err != nil {
		t.Fatal(err)
	}
	lost := locs[n.Content[0]].Pack
	// Which files need the lost pack depends on how the packer grouped the
	// chunks; the victim always does.
	var wantLost []string
	for _, rel := range []string{"a/fine", "a/victim"} {
		fn := tr.nodeAt(t, snA, rel)
		fl, err := tr.Locate("", fn.Content)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range fl {
			if l.Pack == lost {
				wantLost = append(wantLost, rel)
				break
			}
		}
	}
	if err := os.Remove(filepath.Join(tr.dir, filepath.FromSlash(PackName(lost)))); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(tr.cache); err != nil { // the bbolt index
		t.Fatal(err)
	}

	r, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	rep, err := r.Check(ctx, CheckOptions{Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repair == nil || rep.Repair.IndexWritten == 0 || rep.Repair.IndexRemoved == 0 || len(rep.Repair.Unreadable) != 0 {
		t.Fatalf("repair report %+v", rep.Repair)
	}
	if len(rep.Damaged) != 1 || rep.Damaged[0].Snapshot != snA.ID.String() || !slices.Equal(rep.Damaged[0].LostFiles, wantLost) ||
		rep.Damaged[0].IntactFiles != 2-len(wantLost) || rep.Damaged[0].File == "" || rep.Damaged[0].LostBytes < 500<<10 {
		t.Fatalf("damaged %+v", rep.Damaged)
	}
	if !slices.Equal(rep.Repair.Marked, []string{snA.ID.String()}) {
		t.Errorf("marked %v", rep.Repair.Marked)
	}
	// Everything else is recovered: B restores byte for byte, and A's
	// damage is refused loudly, never restored wrong.
	sb, err := r.FindSnapshot(ctx, snB.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "rb")
	if _, err := RestoreBridge(ctx, r, sb, dst, nil); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, wantB, digestTree(t, filepath.Join(dst, "b")))
	sa, err := r.FindSnapshot(ctx, snA.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreBridge(ctx, r, sa, filepath.Join(t.TempDir(), "ra"), nil); err == nil {
		t.Fatal("restored a snapshot whose pack is gone")
	}
	// A second check knows the damage (warning) and finds nothing new; a
	// fresh host opens the repository with the rewritten index files.
	rep, err = r.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors() != 0 || len(rep.Damaged) != 1 || rep.Damaged[0].File == "" {
		t.Fatalf("check after repair: %+v", rep.Findings)
	}
	marks, err := r.DamagedSnapshots(ctx)
	if err != nil || len(marks) != 1 || !slices.Equal(marks[snA.ID.String()].LostFiles, wantLost) {
		t.Fatalf("markers %+v, %v", marks, err)
	}
	r2, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	wantPass(t, verifyIDs(t, r2, L2, snB.ID)...)
	wantFinding(t, verifyIDs(t, r2, L1, snA.ID)[0], L1, "a/victim")
}

// A damaged index file does not stop Open, even on a host with an empty
// cache (its packs are merely unknown); check reports it and --repair
// replaces it.
func TestCheckRepairReplacesDamagedIndexFile(t *testing.T) {
	ctx := context.Background()
	fx := newSpaceFixture(t, 0)
	tr := fx.tr
	ixs := repoFiles(t, tr.dir, DirIndex)
	p := filepath.Join(tr.dir, ixs[0])
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0x40
	os.Chmod(p, 0o644)
	os.WriteFile(p, b, 0o644)
	cache := t.TempDir()
	r, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: cache, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("open with a damaged index file: %v", err)
	}
	rep, err := r.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors() == 0 || !strings.Contains(rep.Findings[0].Message, "content does not match its name") {
		t.Fatalf("findings %+v", rep.Findings)
	}
	if rep, err = r.Check(ctx, CheckOptions{Repair: true}); err != nil {
		t.Fatal(err)
	}
	if len(rep.Damaged) != 0 {
		t.Fatalf("repair marked intact snapshots: %+v", rep.Damaged)
	}
	r2, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("open after repair: %v", err)
	}
	wantPass(t, verifyIDs(t, r2, L3, fx.space.ID, fx.paths.ID)...)
	if rep, err = r2.Check(ctx, CheckOptions{ReadData: true}); err != nil || len(rep.Findings) != 0 {
		t.Fatalf("check after repair: %+v, %v", rep, err)
	}
}

func TestCheckReportsVanishedSnapshotAndStaleLock(t *testing.T) {
	ctx := context.Background()
	fx := newSpaceFixture(t, 0)
	tr := fx.tr
	for _, sn := range []*Snapshot{fx.space, fx.paths} {
		if _, err := tr.AppendAudit(ctx, AuditRecord{Command: "backup", Snapshot: sn.ID.String()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tr.AppendAudit(ctx, AuditRecord{Command: "prune", Snapshot: fx.space.ID.String()}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(tr.dir, filepath.FromSlash(FileName(DirSnapshots, fx.space.ID))))
	os.Remove(filepath.Join(tr.dir, filepath.FromSlash(FileName(DirSnapshots, fx.paths.ID))))
	tr.writeTestLock(t, lockInfo{Version: 1, Host: "elsewhere", PID: 1, Time: time.Now().Add(-time.Hour)}, time.Hour) // stale by the storage's clock
	rep, err := tr.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var vanished, stale int
	for _, f := range rep.Findings {
		if strings.Contains(f.Message, "its manifest is gone and no prune or forget removed it") {
			vanished++
			if f.What != "snapshot "+fx.paths.ShortID() || f.Severity != SevError {
				t.Errorf("vanished: %+v", f)
			}
		}
		if strings.Contains(f.Message, "stale") && f.Severity == SevWarning {
			stale++
		}
	}
	if vanished != 1 || stale != 1 {
		t.Fatalf("vanished %d, stale %d in %+v", vanished, stale, rep.Findings)
	}
}

func TestAuditTrailAndVerifiedLevels(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := []AuditRecord{
		{Time: t0, Command: "verify", Snapshot: "a", Level: "L2", Result: AuditOK},
		{Time: t0.Add(time.Minute), Command: "verify", Snapshot: "b", Level: "L4", Result: AuditOK},
		{Time: t0.Add(2 * time.Minute), Command: "verify", Snapshot: "b", Level: "L1", Result: AuditFailed, Error: "x"},
		{Time: t0.Add(3 * time.Minute), Command: "verify", Snapshot: "c", Level: "L3", Result: AuditOK, Subset: "1/10"},
		{Time: t0.Add(4 * time.Minute), Command: "backup", Snapshot: "d", Result: AuditOK},
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
	lv := VerifiedLevels(all)
	if lv["a"] != L2 || lv["b"] != 0 || lv["c"] != L1 || lv["d"] != 0 {
		t.Fatalf("verified levels %v", lv)
	}
	// A damaged record is reported, never returned.
	p := filepath.Join(tr.dir, filepath.FromSlash(all[0].File))
	b, _ := os.ReadFile(p)
	b[10] ^= 1
	os.Chmod(p, 0o644)
	os.WriteFile(p, b, 0o644)
	got, bad, err = tr.AuditLog(ctx, time.Time{})
	if err != nil || len(got) != 4 || len(bad) != 1 || !errors.Is(bad[0], ErrCorrupt) {
		t.Fatalf("after damage: %d records, %v, %v", len(got), bad, err)
	}
}

func TestPlanSchedule(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	mk := func(b byte, space string, age time.Duration) *Snapshot {
		return &Snapshot{ID: chunk.ID{b}, Manifest: Manifest{Space: space, Time: now.Add(-age)}}
	}
	snaps := []*Snapshot{mk(1, "a", 72*time.Hour), mk(2, "b", 48*time.Hour), mk(3, "a", 2*time.Hour), mk(4, "b", time.Hour), mk(5, "a", time.Minute)}
	rec := func(sn *Snapshot, slot string, ago time.Duration) AuditRecord {
		return AuditRecord{Command: "verify", Snapshot: sn.ID.String(), Schedule: slot, Time: now.Add(-ago), Result: AuditOK, Level: "L1"}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		recs []AuditRecord
		want map[string][]byte // slot -> snapshot first bytes
	}{
		{"nothing ever run", nil, map[string][]byte{SlotNew: {1, 2, 3, 4, 5}, SlotHourly: {5, 4}, SlotDaily: nil, SlotWeekly: {1, 2}}},
		{"all recent", []AuditRecord{rec(snaps[0], SlotNew, time.Hour), rec(snaps[1], SlotNew, time.Hour), rec(snaps[2], SlotNew, time.Hour),
			rec(snaps[3], SlotNew, time.Hour), rec(snaps[4], SlotHourly, 30*time.Minute), rec(snaps[0], SlotDaily, 3*time.Hour),
			rec(snaps[0], SlotWeekly, 24*time.Hour)}, map[string][]byte{}},
		{"hourly due, new snapshot", []AuditRecord{rec(snaps[0], SlotNew, time.Hour), rec(snaps[1], SlotNew, time.Hour), rec(snaps[2], SlotNew, time.Hour),
			rec(snaps[3], SlotHourly, 61*time.Minute), rec(snaps[0], SlotDaily, 3*time.Hour), rec(snaps[0], SlotWeekly, 8*24*time.Hour)},
			map[string][]byte{SlotNew: {5}, SlotHourly: {5, 4}, SlotWeekly: {1, 2}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tasks := PlanSchedule(now, snaps, c.recs, DefaultSchedule, rng)
			got := map[string][]byte{}
			for _, task := range tasks {
				var b []byte
				for _, id := range task.Snapshots {
					b = append(b, id[0])
				}
				got[task.Slot] = b
				if task.Slot == SlotDaily && len(task.Snapshots) != 1 { // 10 % of 5, at least one
					t.Errorf("daily sample of %d snapshots", len(task.Snapshots))
				}
			}
			for slot, want := range c.want {
				if slot == SlotDaily {
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
