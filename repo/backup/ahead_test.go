package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
)

// treeLoads counts the LoadTrees calls a backup makes of a real
// repository.
type treeLoads struct {
	*repo.Repository
	n atomic.Int64
}

func (r *treeLoads) LoadTrees(ctx context.Context, space string, ids []chunk.ID) map[chunk.ID]*repo.Tree {
	r.n.Add(1)
	return r.Repository.LoadTrees(ctx, space, ids)
}

// TestUnchangedDeepTreeReadsParentTreesAhead: the unchanged re-backup of
// 30 chains of 8 directories (a file in each) reads the parent's 241
// trees level by level (treeAhead), one LoadTrees call a level, not one
// per directory, and stores the parent's root again. Without the
// read-ahead it made 242 calls (each an Open of a pack at least), with it
// 10: the source's tree, then a call a level below it (the 30 chains'
// heads and their 8 levels). Pack Opens are not counted: how many runs a
// level's trees make depends on where the concurrent walk stored them.
func TestUnchangedDeepTreeReadsParentTreesAhead(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	for c := range 30 {
		dir := filepath.Join(src, fmt.Sprintf("c%02d", c))
		for d := range 8 {
			dir = filepath.Join(dir, fmt.Sprintf("d%d", d))
			repotest.WriteFile(t, filepath.Join(dir, "f"), []byte(fmt.Sprint(c, d)), 0o644)
		}
	}
	first := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})

	r := &treeLoads{Repository: tr.Repository}
	again, err := Backup(ctx, r, BackupOptions{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if again.Root != first.Root {
		t.Fatalf("unchanged re-backup stored root %s, the parent's is %s", again.Root.Short(), first.Root.Short())
	}
	if s := again.Summary; s.UnchangedFiles != 240 || s.Files != 240 || s.NewChunks != 0 {
		t.Fatalf("unchanged re-backup: %+v", s)
	}
	if n := r.n.Load(); n > 12 {
		t.Fatalf("unchanged re-backup of 241 directories called LoadTrees %d times, want at most 12 (its parent's trees read ahead, a level a call)", n)
	}
}

// TestTreeAheadBound: treeAhead keeps trees up to aheadMaxNodes nodes,
// once each, and gives each back once.
func TestTreeAheadBound(t *testing.T) {
	var h treeAhead
	big := &repo.Tree{Nodes: make([]*repo.Node, aheadMaxNodes-10)}
	small := &repo.Tree{Nodes: make([]*repo.Node, 10)}
	tooMany := &repo.Tree{Nodes: make([]*repo.Node, 1)}
	ids := []chunk.ID{{1}, {2}, {3}}
	if kept := h.put(map[chunk.ID]*repo.Tree{ids[0]: big}); len(kept) != 1 {
		t.Fatalf("kept %d of 1 tree", len(kept))
	}
	if kept := h.put(map[chunk.ID]*repo.Tree{ids[0]: small, ids[1]: small}); len(kept) != 1 || kept[0] != small {
		t.Fatalf("kept %v, want the one tree not held yet", kept)
	}
	if kept := h.put(map[chunk.ID]*repo.Tree{ids[2]: tooMany}); len(kept) != 0 || h.nodes != aheadMaxNodes {
		t.Fatalf("kept %d trees past the bound (%d nodes held)", len(kept), h.nodes)
	}
	out := map[chunk.ID]*repo.Tree{}
	h.take(ids, out)
	if len(out) != 2 || out[ids[0]] != big || out[ids[1]] != small || h.nodes != 0 || len(h.m) != 0 {
		t.Fatalf("took %v, %d nodes and %d trees left", out, h.nodes, len(h.m))
	}
	clear(out)
	if h.take(ids, out); len(out) != 0 {
		t.Fatalf("took %d trees twice", len(out))
	}
}
