package verify_test

import (
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/verify"
)

// TestSnapshotLevelsFollowRetag: verify records of a snapshot's first ID
// hold for its retagged versions (same tree and data), and a failure of
// any version clears what an earlier pass of another proved.
func TestSnapshotLevelsFollowRetag(t *testing.T) {
	orig, retag, other := chunk.ID{1}, chunk.ID{2}, chunk.ID{3}
	sn := func(id chunk.ID, tags ...string) *repo.Snapshot {
		return &repo.Snapshot{ID: id, Manifest: repo.Manifest{Tags: tags}}
	}
	rec := func(id chunk.ID, level, result string) repo.AuditRecord {
		return repo.AuditRecord{Command: "verify", Snapshot: id.String(), Level: level, Result: result}
	}
	sns := []*repo.Snapshot{sn(retag, "x", repo.OriginalTagPrefix+orig.String()), sn(other)}
	recs := []repo.AuditRecord{rec(orig, "L2", repo.AuditOK), rec(other, "L1", repo.AuditOK)}
	got := verify.SnapshotLevels(recs, sns)
	if len(got) != 2 || got[retag.String()] != verify.L2 || got[other.String()] != verify.L1 {
		t.Fatalf("levels %v", got)
	}
	if _, ok := verify.VerifiedLevels(recs)[retag.String()]; ok {
		t.Fatal("VerifiedLevels keys by record ID only")
	}
	// A later failure under the new ID clears the original's pass.
	recs = append(recs, rec(retag, "L3", repo.AuditFailed))
	if l, ok := verify.SnapshotLevels(recs, sns)[retag.String()]; ok {
		t.Fatalf("failed after the retag, still verified at %v", l)
	}
	// And a pass under the new ID counts.
	recs = append(recs, rec(retag, "L3", repo.AuditOK))
	if l := verify.SnapshotLevels(recs, sns)[retag.String()]; l != verify.L3 {
		t.Fatalf("level %v, want L3", l)
	}
}
