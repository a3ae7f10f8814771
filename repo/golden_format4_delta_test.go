package repo_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// testdata/repo-format4-delta was written once by the first binary of
// repository format 4 with delta blobs: two path snapshots of a directory
// holding a 64 KiB warm page file (two fixed 32 KiB chunks), the second
// after one 4 KiB page of the second chunk was rewritten, so that chunk is
// stored as a delta of the first snapshot's. The test restores both
// snapshots byte for byte, checks the delta is a delta (flag bit 1, its
// frame naming the first snapshot's chunk) and rebuilds the index from the
// packs. Never regenerated; regenerate only when deliberately starting it with
//
//	go test ./repo -run 'TestGoldenRepositoryFormat4Delta$' -update-golden
func TestGoldenRepositoryFormat4Delta(t *testing.T) {
	golden := filepath.Join("testdata", "repo-format4-delta")
	if *updateGolden {
		writeDeltaGolden(t, golden)
	}
	src := filepath.Join(golden, "repo")
	cfg, err := os.ReadFile(filepath.Join(src, "config"))
	if err != nil || !bytes.Contains(cfg, []byte(`"version": 4,`)) {
		t.Fatalf("golden config is not of format 4 (%v):\n%s", err, cfg)
	}
	want := loadGoldenDigest(t, golden)
	ctx := context.Background()
	for _, rebuild := range []bool{false, true} {
		r := openGoldenCopy(t, src)
		if rebuild {
			if _, err := r.RebuildIndex(ctx); err != nil {
				t.Fatalf("index rebuild: %v", err)
			}
		}
		sns, err := r.Snapshots(ctx)
		if err != nil || len(sns) != 2 || len(want) != 2 {
			t.Fatalf("%d snapshots, %d digests: %v", len(sns), len(want), err)
		}
		var contents [2][]chunk.ID
		for i, s := range sns {
			w, ok := want[s.ID.String()]
			if !ok {
				t.Fatalf("snapshot %s is not in digest.json", s.ID)
			}
			repotest.CompareTrees(t, w, restoredDigest(t, s, restoretest.Restore(t, r, s)))
			contents[i] = deltaGoldenNode(t, r, s).Content
		}
		if sns[0].Time.After(sns[1].Time) {
			contents[0], contents[1] = contents[1], contents[0]
		}
		d := contents[1][1]
		locs, err := r.Locate("", []chunk.ID{d})
		if err != nil || locs[d].Flags != repo.FlagDelta || contents[1][0] != contents[0][0] {
			t.Fatalf("rebuild %v: second snapshot's chunk 1: flags %#x (%v), want a delta", rebuild, locs[d].Flags, err)
		}
		bases, errs := r.RefTargets(ctx, "", []chunk.ID{d}, []index.Location{locs[d]})
		if errs[0] != nil || bases[0] != contents[0][1] {
			t.Fatalf("rebuild %v: delta's base %s (%v), want %s", rebuild, bases[0].Short(), errs[0], contents[0][1].Short())
		}
	}
}

// deltaGoldenNode is the warm file's node in a snapshot of the golden.
func deltaGoldenNode(t *testing.T, r *repo.Repository, sn *repo.Snapshot) *repo.Node {
	t.Helper()
	id := sn.Root
	for _, name := range []string{"src", "warm", "warm_tier.dat"} {
		tr, err := r.LoadTree(context.Background(), sn.Space, id)
		if err != nil {
			t.Fatal(err)
		}
		n := tr.Find(name)
		if n == nil {
			t.Fatalf("snapshot %s has no %s", sn.ShortID(), name)
		}
		if n.Subtree == nil {
			return n
		}
		id = *n.Subtree
	}
	t.Fatal("no warm file")
	return nil
}

func writeDeltaGolden(t *testing.T, golden string) {
	r := newGoldenRepo(t, golden, false)
	src := filepath.Join(t.TempDir(), "src")
	warm := repotest.WarmPages(41, 64<<10)
	repotest.WriteFile(t, filepath.Join(src, "note.txt"), []byte("format 4: delta blobs\n"), 0o644)
	digests := goldenDigest{}
	for i := range 2 {
		if i == 1 {
			warm = bytes.Clone(warm)
			copy(warm[13*chunk.DeltaPageSize+8:14*chunk.DeltaPageSize], repotest.RandomBytes(42, chunk.DeltaPageSize-8))
		}
		repotest.WriteFile(t, filepath.Join(src, "warm", "warm_tier.dat"), warm, 0o644)
		sn := backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{src}, Host: "golden", Tags: []string{"golden"}})
		digests[sn.ID.String()] = restoredDigest(t, sn, restoretest.Restore(t, r, sn))
	}
	finishGolden(t, golden, digests)
}
