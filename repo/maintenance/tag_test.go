package maintenance

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

func TestRetag(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The audit trail's backup record is what check compares with.
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}, Tags: []string{"a"}})
	if _, err := tr.AppendAudit(ctx, repo.AuditRecord{Command: "backup", Snapshot: sn.ID.String(), Result: repo.AuditOK}); err != nil {
		t.Fatal(err)
	}
	// A snapshot check --repair marked damaged stays marked under its new ID.
	if _, err := markDamaged(ctx, tr.Repository, &DamageRecord{Snapshot: sn.ID.String(), Reason: "test", LostBytes: 1}); err != nil {
		t.Fatal(err)
	}
	res, err := Retag(ctx, tr.Repository, TagOptions{Refs: []string{sn.ID.String()[:8], "latest"}, Edit: repo.TagEdit{Add: []string{"b"}}})
	if err != nil || len(res.Changed) != 1 || res.Changed[0].Old != sn.ID.String() {
		t.Fatalf("retag: %+v, %v", res, err)
	}
	nsn, err := tr.Reopen(t).LoadSnapshotFile(ctx, mustParse(t, res.Changed[0].New))
	if err != nil {
		t.Fatalf("the new manifest does not verify: %v", err)
	}
	if !slices.Equal(nsn.Tags, []string{"a", "b", "original:" + sn.ID.String()}) || nsn.Root != sn.Root || !nsn.Time.Equal(sn.Time) {
		t.Fatalf("new manifest %+v", nsn.Manifest)
	}
	dmg, err := DamagedSnapshots(ctx, tr.Repository)
	if err != nil || dmg[nsn.ID.String()].LostBytes != 1 || !strings.HasPrefix(dmg[nsn.ID.String()].Reason, "test (marked on snapshot "+sn.ShortID()) {
		t.Fatalf("damage markers after retag: %+v, %v", dmg, err)
	}
	ids, err := tr.ListSnapshotIDs(ctx)
	if err != nil || len(ids) != 1 || ids[0] != nsn.ID {
		t.Fatalf("snapshots after retag: %v, %v", ids, err)
	}
	// Again: the original stays the first snapshot; an edit that changes
	// nothing writes nothing.
	res, err = Retag(ctx, tr.Repository, TagOptions{Refs: []string{"latest"}, Edit: repo.TagEdit{Remove: []string{"a"}}})
	if err != nil || len(res.Changed) != 1 || !slices.Equal(res.Changed[0].Tags, []string{"b", "original:" + sn.ID.String()}) {
		t.Fatalf("second retag: %+v, %v", res, err)
	}
	res, err = Retag(ctx, tr.Repository, TagOptions{Refs: []string{"latest"}, Edit: repo.TagEdit{Add: []string{"b"}}})
	if err != nil || len(res.Changed) != 0 || len(res.Unchanged) != 1 {
		t.Fatalf("retag that changes nothing: %+v, %v", res, err)
	}
	if _, err := Retag(ctx, tr.Repository, TagOptions{Refs: []string{"latest"}, Edit: repo.TagEdit{Add: []string{"identity:00"}}}); err == nil {
		t.Fatal("a system tag was added")
	}
	rep, err := Check(ctx, tr.Repository, CheckOptions{})
	if err != nil || rep.Errors() != 0 {
		t.Fatalf("check after retag: %+v, %v", rep, err)
	}
	recs, _, err := tr.AuditLog(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var tagged []string
	for _, rec := range recs {
		if rec.Command == "tag" {
			tagged = append(tagged, rec.Snapshot)
		}
	}
	if len(tagged) != 2 || tagged[0] != sn.ID.String() {
		t.Fatalf("tag audit records %q", tagged)
	}
}

func mustParse(t *testing.T, s string) chunk.ID {
	t.Helper()
	id, err := chunk.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
