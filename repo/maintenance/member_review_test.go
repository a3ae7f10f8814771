package maintenance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/repo"
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
	var plain []byte
	for _, b := range f.filesA {
		plain = append(plain, b...)
	}
	stored, compressed := chunk.Compress(nil, plain, chunk.LevelFastest)
	if !compressed {
		t.Fatal("group A did not compress")
	}
	write := func(add func(p *repo.Packer)) {
		p := r.NewPacker(ctx, "")
		add(p)
		packs, _, err := p.Flush()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SaveIndex(ctx, packs); err != nil {
			t.Fatal(err)
		}
	}
	write(func(p *repo.Packer) {
		if err := p.Add(repo.DataBlob, f.gA, repo.FlagCompressed, len(plain), stored); err != nil {
			t.Fatal(err)
		}
	})
	write(func(p *repo.Packer) {
		off := 0
		for i, b := range f.filesA {
			frame := chunk.AppendMember(nil, chunk.Member{Group: f.gA, Offset: uint32(off), Length: uint32(len(b))})
			if err := p.Add(repo.DataBlob, f.nodesA[i].Content[0], repo.FlagMember, len(b), frame); err != nil {
				t.Fatal(err)
			}
			off += len(b)
		}
	})
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
