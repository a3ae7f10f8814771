package pitr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"memento/chunk"
	"memento/repo"
)

// treeStore is a Repository that serves trees from a map; Snapshots is not
// needed by SpaceTree and panics (nil embedded interface).
type treeStore struct {
	Repository
	trees map[chunk.ID]*repo.Tree
}

func (f *treeStore) LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error) {
	if t, ok := f.trees[id]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("tree %s not stored", id.Short())
}

// TestSpaceTreeWithoutRepository walks a space snapshot's trees served by a
// fake Repository: SpaceTree finds spaces/<space> and metadata.json, and
// refuses a space directory that is a symlink.
func TestSpaceTreeWithoutRepository(t *testing.T) {
	rootID, spacesID, spaceID := chunk.ID{1}, chunk.ID{2}, chunk.ID{3}
	meta := &repo.Node{Name: "metadata.json", Type: repo.NodeFile}
	dir := &repo.Node{Name: "s1", Type: repo.NodeDir, Subtree: &spaceID}
	f := &treeStore{trees: map[chunk.ID]*repo.Tree{
		rootID:   {Nodes: []*repo.Node{meta, {Name: "spaces", Type: repo.NodeDir, Subtree: &spacesID}}},
		spacesID: {Nodes: []*repo.Node{dir}},
	}}
	sn := &repo.Snapshot{Manifest: repo.Manifest{Space: "s1", Root: rootID}}
	tree, sd, md, err := SpaceTree(context.Background(), f, sn)
	if err != nil || tree != spaceID || sd != dir || md != meta {
		t.Fatalf("SpaceTree = %s, %v, %v, %v; want %s, the s1 and metadata.json nodes", tree.Short(), sd, md, err, spaceID.Short())
	}

	f.trees[spacesID] = &repo.Tree{Nodes: []*repo.Node{{Name: "s1", Type: repo.NodeSymlink, LinkTarget: "/elsewhere"}}}
	if _, _, _, err := SpaceTree(context.Background(), f, sn); !errors.Is(err, repo.ErrUnsafePath) {
		t.Fatalf("SpaceTree on a symlinked space dir = %v, want ErrUnsafePath", err)
	}
}
