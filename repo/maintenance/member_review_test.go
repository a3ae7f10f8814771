package maintenance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// TestGroupedFilesPruneGroupTwiceMembersApart: group A exists twice (in
// the fixture's pack and alone in a second pack) and its members a second
// time in a third pack without it, as prune's repack and two writers can
// leave them. Once sn1 is forgotten, prune keeps one copy of group A and
// of sn2's two members, whichever packs they are in: sn2 restores byte for
// byte, check --read-data finds nothing, and a second prune has nothing to
// do.
func TestGroupedFilesPruneGroupTwiceMembersApart(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	r := f.tr.Repository
	f.storeGroupAApart(t)
	if _, err := Forget(ctx, r, ForgetOptions{IDs: []string{f.sn1.ID.String()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Prune(ctx, r, PruneOptions{MaxUnused: 0}); err != nil {
		t.Fatal(err)
	}
	r = f.tr.Reopen(t)
	rep, err := Check(ctx, r, CheckOptions{ReadData: true})
	if err != nil || blobErrors(rep) != 0 {
		t.Fatalf("check --read-data after prune: %v %+v", err, rep.Findings)
	}
	dst := restoretest.Restore(t, r, f.sn2)
	for i, n := range f.nodesA[:2] {
		if b, err := os.ReadFile(filepath.Join(dst, n.Name)); err != nil || !bytes.Equal(b, f.filesA[i]) {
			t.Fatalf("restored %s after prune: %v", n.Name, err)
		}
	}
	if res, err := Prune(ctx, r, PruneOptions{MaxUnused: 0}); err != nil || res.PacksDeleted+res.PacksRepacked != 0 {
		t.Fatalf("prune after a prune: %v %+v", err, res)
	}
}

// TestPruneKeepsGroupsPhase1Dropped: a backup saved between phase 1 and
// phase 2 deduplicates small files against members whose groups phase 1
// planned to drop (the pack of a forgotten snapshot's groups, repacked
// for the one file a kept snapshot still uses). Phase 2 keeps the pack
// back: the new snapshot restores byte for byte and check --read-data
// finds nothing, then and after the next prune.
func TestPruneKeepsGroupsPhase1Dropped(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	var files [][]byte
	for i := range 60 {
		b := []byte(strings.Repeat(fmt.Sprintf("def f%d(x):\n    return x + %d\n", i, i), 40+i))
		files = append(files, b)
		repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("m%02d.py", i)), b, 0o644)
	}
	old := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	// The kept file is a member: the backup spreads the files over a few
	// open groups in the order its workers take them, and under load one
	// of them may get a single file, stored whole (m00.py once in seven
	// runs on a busy machine).
	k := -1
	for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59} {
		if flags(t, tr.Repository, tr.ChunkKey("").Sum(files[i])) == repo.FlagMember {
			k = i
			break
		}
	}
	if k < 0 {
		t.Fatal("none of m00..m09, m50..m59 is a member")
	}
	keep := filepath.Join(t.TempDir(), "keep")
	repotest.WriteFile(t, filepath.Join(keep, fmt.Sprintf("m%02d.py", k)), files[k], 0o644)
	kept := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{keep}})
	forgetAll(t, tr.Repository, old)
	again := filepath.Join(t.TempDir(), "again")
	for i := 10; i < 50; i++ {
		repotest.WriteFile(t, filepath.Join(again, fmt.Sprintf("c%02d.py", i)), files[i], 0o644)
	}
	var sn *repo.Snapshot
	res, err := Prune(ctx, tr.Repository, PruneOptions{
		MaxUnused: 0,
		BetweenPhases: func(ctx context.Context) error {
			var err error
			sn, err = backup.Backup(ctx, tr.Repository, backup.BackupOptions{Paths: []string{again}})
			return err
		},
	})
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	// Phase 1 regrouped the kept file, the one live file of its group; the
	// backup between the phases used dead members of that group.
	if sn.Summary.NewBytes != 0 || res.Exclusive == nil || res.Exclusive.PacksKeptBack == 0 || res.GroupsRegrouped != 1 {
		t.Fatalf("backup between the phases stored %d new bytes; %d groups regrouped; phase 2 %+v", sn.Summary.NewBytes, res.GroupsRegrouped, res.Exclusive)
	}
	for range 2 {
		mustCheck(t, tr.Repository, true)
		repotest.CompareTrees(t, repotest.DigestTree(t, again), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "again")))
		repotest.CompareTrees(t, repotest.DigestTree(t, keep), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, kept), "keep")))
		prune(t, tr.Repository, PruneOptions{MaxUnused: 0})
	}
}
