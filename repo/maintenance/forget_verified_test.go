package maintenance

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/verify"
	"memento/repo/verify/verifytest"
)

// Forget never removes the newest snapshot of a group that passed a
// verification: after a ransomware garbled the source, every newer
// snapshot is useless, and a "--keep-last 1" would otherwise throw away
// the last good one. It says so, and a later failed verification lifts
// the protection.
func TestForgetKeepsNewestVerified(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	var sns []*repo.Snapshot
	for i := range 4 {
		repotest.WriteFile(t, filepath.Join(src, "f"), repotest.RandomBytes(uint64(10+i), 64<<10), 0o644)
		sns = append(sns, backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}}))
	}
	record := func(sn *repo.Snapshot) {
		t.Helper()
		vds := verifytest.IDs(t, tr.Repository, verify.L2, sn.ID)
		verifytest.WantPass(t, vds...)
		if _, err := tr.AppendAudit(ctx, vds[0].AuditRecord("")); err != nil {
			t.Fatal(err)
		}
	}
	// Snapshots 0 and 1 verified; 2 and 3 never were.
	record(sns[0])
	record(sns[1])

	res, err := Forget(ctx, tr.Repository, ForgetOptions{All: true, Policy: RetentionPolicy{Last: 1}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Groups) != 1 {
		t.Fatalf("groups: %+v", res.Groups)
	}
	g := res.Groups[0]
	keep := map[string][]string{}
	for _, it := range g.Keep {
		keep[it.ID] = it.Reasons
	}
	var removed []string
	for _, it := range g.Remove {
		removed = append(removed, it.ID)
	}
	if len(keep) != 2 || keep[sns[3].ID.String()] == nil || keep[sns[1].ID.String()] == nil {
		t.Fatalf("keep %v, want snapshots 3 (policy) and 1 (newest verified)", keep)
	}
	if r := strings.Join(keep[sns[1].ID.String()], ", "); r != KeptNewestVerified+" (L2 passed)" {
		t.Fatalf("reason for the newest verified snapshot: %q", r)
	}
	slices.Sort(removed)
	want := []string{sns[0].ID.String(), sns[2].ID.String()}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}

	// Named by ID, it is kept all the same.
	res, err = Forget(ctx, tr.Repository, ForgetOptions{IDs: []string{sns[1].ID.String(), sns[2].ID.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Removed, []string{sns[2].ID.String()}) {
		t.Fatalf("forget by ID removed %v, want only %s", res.Removed, sns[2].ShortID())
	}
	if _, err := tr.FindSnapshot(ctx, sns[1].ID.String()); err != nil {
		t.Fatalf("the newest verified snapshot is gone: %v", err)
	}

	// A failed verification of snapshot 1 clears it: snapshot 0 is then the
	// newest verified one, and 1 may go.
	if _, err := tr.AppendAudit(ctx, repo.AuditRecord{Command: "verify", Snapshot: sns[1].ID.String(), Level: "L2", Result: repo.AuditFailed, Error: "test"}); err != nil {
		t.Fatal(err)
	}
	res, err = Forget(ctx, tr.Repository, ForgetOptions{All: true, Policy: RetentionPolicy{Last: 1}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(res.Removed)
	if !slices.Equal(res.Removed, []string{sns[1].ID.String()}) {
		t.Fatalf("after snapshot 1 failed verification, forget removed %v, want only it", res.Removed)
	}
	left, err := tr.ListSnapshotIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 {
		t.Fatalf("%d snapshots left, want 2 (the newest, the newest verified)", len(left))
	}
}
