package backup

import (
	"context"
	"sync"

	"memento/chunk"
	"memento/repo"
)

// A directory's parent trees were read per directory level
// (parentSubtrees): on a tree of 68,000 small directories, most with one
// subdirectory, that was a LoadTrees call per directory, each an Open of
// the pack (a stat of its path), a read and a plan of its own for one or
// two trees (docs/benchmarks.md, "Issue 18, session 26"). So when a level
// needs trees that are not read yet, parentSubtrees also reads the trees
// below them, level by level (breadth first), one LoadTrees call a level
// for all of them, and keeps them in treeAhead until their directories are
// walked and take them.
//
// What treeAhead holds is bounded by aheadMaxNodes nodes; a tree that
// would pass it is not kept (its directory reads it when walked, as
// before). A tree kept for a directory that is never walked (gone from
// the disk, excluded since) stays until the backup ends and only takes
// room from the read-ahead.
const (
	aheadMaxNodes = 1 << 15 // nodes held: some MiB
	aheadMaxTrees = 4096    // trees one read-ahead reads
)

// treeAhead holds parent trees read ahead of the walk, by ID.
type treeAhead struct {
	mu    sync.Mutex
	m     map[chunk.ID]*repo.Tree
	nodes int // of the trees in m
}

// take moves the trees of ids that it holds into out.
func (h *treeAhead) take(ids []chunk.ID, out map[chunk.ID]*repo.Tree) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if t, ok := h.m[id]; ok {
			out[id] = t
			delete(h.m, id)
			h.nodes -= len(t.Nodes)
		}
	}
}

// put keeps the trees of trees that fit, and returns them.
func (h *treeAhead) put(trees map[chunk.ID]*repo.Tree) []*repo.Tree {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[chunk.ID]*repo.Tree{}
	}
	kept := make([]*repo.Tree, 0, len(trees))
	for id, t := range trees {
		if _, ok := h.m[id]; ok || h.nodes+len(t.Nodes) > aheadMaxNodes {
			continue
		}
		h.m[id] = t
		h.nodes += len(t.Nodes)
		kept = append(kept, t)
	}
	return kept
}

// readAhead reads the trees below trees, level by level, into a.ahead,
// up to aheadMaxTrees of them.
func (a *archiver) readAhead(ctx context.Context, trees []*repo.Tree) {
	read := 0
	for len(trees) > 0 && read < aheadMaxTrees && ctx.Err() == nil {
		seen := map[chunk.ID]struct{}{}
		var ids []chunk.ID
		for _, t := range trees {
			for _, n := range t.Nodes {
				if n.Type != repo.NodeDir || n.Subtree == nil {
					continue
				}
				if _, dup := seen[*n.Subtree]; !dup && read+len(ids) < aheadMaxTrees {
					seen[*n.Subtree] = struct{}{}
					ids = append(ids, *n.Subtree)
				}
			}
		}
		if len(ids) == 0 {
			return
		}
		read += len(ids)
		trees = a.ahead.put(a.r.LoadTrees(ctx, a.space, ids))
	}
}
