package maintenance

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// restoreGroupA restores sn and compares files a<from>.. with the
// fixture's bytes.
func restoreGroupA(t *testing.T, r *repo.Repository, f *groupFixture, sn *repo.Snapshot, from, to int) {
	t.Helper()
	dst := restoretest.Restore(t, r, sn)
	for i := from; i < to; i++ {
		n := f.nodesA[i]
		if b, err := os.ReadFile(filepath.Join(dst, n.Name)); err != nil || !bytes.Equal(b, f.filesA[i]) {
			t.Fatalf("restored %s: %v", n.Name, err)
		}
	}
}

// TestPruneRegroupInterruptedThenRerun: a prune that regrouped group A's
// two live files (new packs written, unindexed) fails between its phases
// (a crash, a cancelled context); nothing was deleted, sn2 restores; the
// next prune (whose inventory holds the first one's unindexed packs: a
// second copy of a0 and a1 naming a new group) leaves a repository that
// check --read-data finds clean, sn2 restoring byte for byte, and a third
// prune has nothing to do.
func TestPruneRegroupInterruptedThenRerun(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	forgetIDs(t, f.tr.Repository, f.sn1)
	stop := errors.New("crash between the phases")
	res, err := Prune(ctx, f.tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused,
		BetweenPhases: func(context.Context) error { return stop }})
	if !errors.Is(err, stop) || res.GroupsRegrouped != 1 || res.PacksWritten == 0 {
		t.Fatalf("interrupted prune: %v, %d groups regrouped, %d packs written, want the crash, 1, >0", err, res.GroupsRegrouped, res.PacksWritten)
	}
	r := f.tr.Reopen(t)
	restoreGroupA(t, r, f, f.sn2, 0, 2)
	res = prune(t, r, PruneOptions{MaxUnused: DefaultMaxUnused})
	t.Logf("re-run: %d deleted, %d repacked, %d regrouped", res.PacksDeleted, res.PacksRepacked, res.GroupsRegrouped)
	for range 2 {
		r = f.tr.Reopen(t)
		rep, err := Check(ctx, r, CheckOptions{ReadData: true})
		if err != nil || blobErrors(rep) != 0 {
			t.Fatalf("check --read-data after the re-run: %v %+v", err, rep.Findings)
		}
		for _, fd := range rep.Findings {
			if strings.Contains(fd.Message, "not listed in any index file") {
				t.Fatalf("check after the re-run: %s: %s", fd.What, fd.Message)
			}
		}
		restoreGroupA(t, r, f, f.sn2, 0, 2)
		res = prune(t, r, PruneOptions{MaxUnused: DefaultMaxUnused})
	}
	if res.PacksDeleted+res.PacksRepacked+res.GroupsRegrouped != 0 {
		t.Fatalf("third prune: %+v", res)
	}
}

// TestPruneRegroupKeptPackNamesGroup: a pack prune keeps (a used 256 KiB
// file, and a second copy of member a3 naming group A, dead, less than 1 %
// of it) names group A once group A's regrouping is planned: the
// regrouping is cancelled (group A stays: a backup may deduplicate against
// the kept copy of a3), check --read-data finds nothing, both snapshots
// restore, then and after the next prune.
func TestPruneRegroupKeptPackNamesGroup(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	r := f.tr.Repository
	big := make([]byte, 256<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(rng.IntN(256))
	}
	key := r.ChunkKey("")
	bigID := key.Sum(big)
	p := r.NewPacker(ctx, "")
	if err := p.Add(repo.DataBlob, bigID, 0, len(big), big); err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, b := range f.filesA[:3] {
		off += len(b)
	}
	frame := chunk.AppendMember(nil, chunk.Member{Group: f.gA, Offset: uint32(off), Length: uint32(len(f.filesA[3]))})
	if err := p.Add(repo.DataBlob, f.nodesA[3].Content[0], repo.FlagMember, len(f.filesA[3]), frame); err != nil {
		t.Fatal(err)
	}
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	h := repo.Hash(blake3.Sum256(big))
	c := repotest.NewCrafter(t, r, "")
	bigSn := c.Snapshot(c.Tree(&repo.Node{Name: "big", Type: repo.NodeFile, Mode: 0o644, Size: uint64(len(big)), BLAKE3: &h, MTimeNS: 1, Content: []chunk.ID{bigID}}))
	forgetIDs(t, r, f.sn1)
	res := prune(t, r, PruneOptions{MaxUnused: DefaultMaxUnused})
	t.Logf("prune: %d deleted, %d repacked, %d kept, %d regrouped", res.PacksDeleted, res.PacksRepacked, res.PacksKept, res.GroupsRegrouped)
	if res.GroupsRegrouped != 0 {
		t.Fatalf("prune regrouped %d groups; group A, named by a kept pack, should stay", res.GroupsRegrouped)
	}
	if _, err := f.tr.Reopen(t).Locate("", []chunk.ID{f.gA}); err != nil {
		t.Fatalf("group A, named by a kept member copy, is gone: %v", err)
	}
	for range 2 {
		r = f.tr.Reopen(t)
		if rep, err := Check(ctx, r, CheckOptions{ReadData: true}); err != nil || blobErrors(rep) != 0 {
			t.Fatalf("check --read-data after prune: %v %+v", err, rep.Findings)
		}
		restoreGroupA(t, r, f, f.sn2, 0, 2)
		dst := restoretest.Restore(t, r, bigSn)
		if b, err := os.ReadFile(filepath.Join(dst, "big")); err != nil || !bytes.Equal(b, big) {
			t.Fatalf("restored big: %v", err)
		}
		prune(t, r, PruneOptions{MaxUnused: DefaultMaxUnused})
	}
}

// TestPruneRegroupPhase1SnapshotUsesDeadMemberApart: group A is stored a
// second time alone, and its six members a second time in a pack of their
// own (the layout of TestGroupedFilesPruneGroupTwiceMembersApart); sn1 is
// forgotten, so prune regroups sn2's a0 and a1. Between the phases a
// snapshot is saved that uses the dead members a3 and a4 (and the live
// a0): phase 2 keeps back what they need. Check --read-data finds nothing,
// both snapshots restore byte for byte, then and after the next prune.
func TestPruneRegroupPhase1SnapshotUsesDeadMemberApart(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	r := f.tr.Repository
	f.storeGroupAApart(t)
	forgetIDs(t, r, f.sn1)
	var sn *repo.Snapshot
	res, err := Prune(ctx, r, PruneOptions{MaxUnused: DefaultMaxUnused, BetweenPhases: func(context.Context) error {
		c := repotest.NewCrafter(t, r, "")
		sn = c.Snapshot(c.Tree(f.nodesA[0], f.nodesA[3], f.nodesA[4]))
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prune: %d deleted, %d repacked, %d regrouped, phase 2 %+v", res.PacksDeleted, res.PacksRepacked, res.GroupsRegrouped, res.Exclusive)
	for range 2 {
		r = f.tr.Reopen(t)
		if rep, err := Check(ctx, r, CheckOptions{ReadData: true}); err != nil || blobErrors(rep) != 0 {
			t.Fatalf("check --read-data after prune: %v %+v", err, rep.Findings)
		}
		restoreGroupA(t, r, f, f.sn2, 0, 2)
		dst := restoretest.Restore(t, r, sn)
		for _, i := range []int{0, 3, 4} {
			if b, err := os.ReadFile(filepath.Join(dst, f.nodesA[i].Name)); err != nil || !bytes.Equal(b, f.filesA[i]) {
				t.Fatalf("restored %s of the snapshot saved between the phases: %v", f.nodesA[i].Name, err)
			}
		}
		prune(t, r, PruneOptions{MaxUnused: DefaultMaxUnused})
	}
}
