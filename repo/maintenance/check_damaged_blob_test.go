package maintenance

import (
	"context"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
	"path/filepath"
	"strings"
	"testing"
)

// A blob that check --read-data finds damaged is left out of the index by
// --repair: the next backup stores its data again instead of deduplicating
// against the damaged copy (so the new snapshot restores), and later checks
// note the left-out blob as a warning, not a disagreement.
func TestCheckRepairLeavesDamagedBlobOut(t *testing.T) {
	ctx := context.Background()
	fx := newCorruptFixture(t, false)
	tr := fx.tr
	flip(t, fx.pack, fx.loc.off+fx.loc.length/2)
	rep, err := Check(ctx, tr.Repository, CheckOptions{ReadData: true, Repair: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repair == nil || rep.Repair.LeftOut != 1 || len(rep.Repair.Marked) != 1 {
		t.Fatalf("repair: %+v", rep.Repair)
	}
	r := tr.Reopen(t) // a new process on this host
	tr.Repository = r
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: fx.sn.Paths}) // the parent is the damaged snapshot; nothing changed on disk
	if sn.Summary.NewChunks == 0 {
		t.Fatal("the backup after repair stored nothing: it deduplicated against the damaged blob")
	}
	repotest.CompareTrees(t, repotest.DigestTree(t, fx.sn.Paths[0]), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src")))
	rep, err = Check(ctx, tr.Repository, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left bool
	for _, f := range rep.Findings {
		if f.Severity == SevWarning && strings.Contains(f.Message, "not indexed: check --repair left them out as damaged") {
			left = true
		}
		if f.Severity == SevError {
			t.Errorf("check after repair and backup: %s: %s", f.What, f.Message)
		}
	}
	if !left {
		t.Errorf("check does not note the left-out blob: %+v", rep.Findings)
	}
}
