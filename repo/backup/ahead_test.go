package backup

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
)

// packOpens counts the Opens of packs (data/).
type packOpens struct {
	repo.Backend
	n atomic.Int64
}

func (b *packOpens) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if strings.HasPrefix(name, repo.DirData+"/") {
		b.n.Add(1)
	}
	return b.Backend.Open(ctx, name, off, length)
}

// ListModTimes keeps the local backend's lock clock (repo.ModTimeLister).
func (b *packOpens) ListModTimes(ctx context.Context, dir string, fn func(string, int64, time.Time) error) error {
	return b.Backend.(repo.ModTimeLister).ListModTimes(ctx, dir, fn)
}

// TestUnchangedDeepTreeReadsParentTreesAhead: the unchanged re-backup of
// 30 chains of 8 directories (a file in each) reads the parent's 241
// trees level by level (treeAhead), not with a read of the pack per
// directory, and stores the parent's root again. Without the read-ahead
// it opened a pack 246 times, with it 17.
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

	be := &packOpens{Backend: tr.Backend}
	r, err := repo.Open(ctx, be, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if err != nil {
		t.Fatal(err)
	}
	again := mustBackup(t, r, BackupOptions{Paths: []string{src}})
	if again.Root != first.Root {
		t.Fatalf("unchanged re-backup stored root %s, the parent's is %s", again.Root.Short(), first.Root.Short())
	}
	if s := again.Summary; s.UnchangedFiles != 240 || s.Files != 240 || s.NewChunks != 0 {
		t.Fatalf("unchanged re-backup: %+v", s)
	}
	if n := be.n.Load(); n > 40 {
		t.Fatalf("unchanged re-backup of 241 directories opened a pack %d times, want at most 40 (its parent's trees read ahead, level by level)", n)
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
