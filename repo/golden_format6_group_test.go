package repo_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// testdata/repo-format6-group was written once by the first binary of
// repository format 6 with grouped small files: one path snapshot, written
// through the storage core's primitives (repotest.Crafter: Packer.AddGroup,
// EncodeTree, SaveIndex, SaveSnapshot), of five small text files stored as
// the members of one compressed group blob (flag bit 2, frames naming the
// group), three at the top and two in a subdirectory, and one file stored
// whole. The test restores it byte for byte, checks that the members are
// members of the group and the group a compressed blob stored whole, and
// does both again after rebuilding the index from the packs. Never
// regenerated; regenerate only when deliberately starting it with
//
//	go test ./repo -run 'TestGoldenRepositoryFormat6Group$' -update-golden
func TestGoldenRepositoryFormat6Group(t *testing.T) {
	golden := filepath.Join("testdata", "repo-format6-group")
	if *updateGolden {
		writeGroupGolden(t, golden)
	}
	src := filepath.Join(golden, "repo")
	cfg, err := os.ReadFile(filepath.Join(src, "config"))
	if err != nil || !bytes.Contains(cfg, []byte(`"version": 6,`)) {
		t.Fatalf("golden config is not of format 6 (%v):\n%s", err, cfg)
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
		if !r.Config().GroupedFiles() {
			t.Fatal("golden repository of format 6 has no grouped files")
		}
		sns, err := r.Snapshots(ctx)
		if err != nil || len(sns) != 1 || len(want) != 1 {
			t.Fatalf("%d snapshots, %d digests: %v", len(sns), len(want), err)
		}
		sn := sns[0]
		w, ok := want[sn.ID.String()]
		if !ok {
			t.Fatalf("snapshot %s is not in digest.json", sn.ID)
		}
		repotest.CompareTrees(t, w, restoredDigest(t, sn, restoretest.Restore(t, r, sn)))
		var members []chunk.ID
		top, err := r.LoadTree(ctx, sn.Space, sn.Root)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range top.Nodes {
			if n.Subtree != nil {
				sub, err := r.LoadTree(ctx, sn.Space, *n.Subtree)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range sub.Nodes {
					members = append(members, m.Content...)
				}
			} else if strings.HasPrefix(n.Name, "mod") {
				members = append(members, n.Content...)
			}
		}
		locs, err := r.Locate("", members)
		if err != nil || len(members) != 5 {
			t.Fatalf("rebuild %v: %d members: %v", rebuild, len(members), err)
		}
		ls := make([]index.Location, len(members))
		for i, id := range members {
			ls[i] = locs[id]
			if locs[id].Flags != repo.FlagMember {
				t.Fatalf("rebuild %v: member %s: flags %#x, want a member", rebuild, id.Short(), locs[id].Flags)
			}
		}
		groups, errs := r.RefTargets(ctx, "", members, ls)
		for i := range members {
			if errs[i] != nil || groups[i] != groups[0] {
				t.Fatalf("rebuild %v: member %s of group %s (%v), want all of %s", rebuild, members[i].Short(), groups[i].Short(), errs[i], groups[0].Short())
			}
		}
		g, err := r.Locate("", []chunk.ID{groups[0]})
		if err != nil || g[groups[0]].Flags != repo.FlagCompressed || g[groups[0]].Pack != ls[0].Pack {
			t.Fatalf("rebuild %v: group %s: %+v %v, want a compressed blob in its members' pack", rebuild, groups[0].Short(), g, err)
		}
	}
}

func writeGroupGolden(t *testing.T, golden string) {
	r := newGoldenRepo(t, golden, false)
	c := repotest.NewCrafter(t, r, "")
	var names []string
	var files [][]byte
	for i := range 5 {
		names = append(names, fmt.Sprintf("mod%d.py", i))
		files = append(files, []byte(strings.Repeat(fmt.Sprintf("def f%d(x):\n    return x + %d  # format 6: grouped small files\n", i, i), 4+9*i)))
	}
	nodes, _ := c.Group(names, files)
	whole := c.File("whole.bin", repotest.RandomBytes(6, 3000))
	sn := c.Snapshot(c.Tree(nodes[0], nodes[1], nodes[2], c.Dir("pkg", nodes[3], nodes[4]), whole))
	finishGolden(t, golden, goldenDigest{sn.ID.String(): restoredDigest(t, sn, restoretest.Restore(t, r, sn))})
	// What the other goldens do not hold either: the 4 MiB reserve file
	// and the empty locks directory.
	for _, p := range []string{".tmp-reserve", "locks"} {
		if err := os.Remove(filepath.Join(golden, "repo", p)); err != nil {
			t.Fatal(err)
		}
	}
}
