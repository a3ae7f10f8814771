package inspect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"memento/chunk"
	"memento/repo"
)

// Lookup returns the node at p in a snapshot (slash-separated, as `ls`
// shows it: "/" is the root, which has no node and returns nil) and the ID
// of the tree it is the directory of (for "/", the root). A path that is
// not in the snapshot is a repo.ErrNotFound error naming it.
func Lookup(ctx context.Context, r Repository, sn *repo.Snapshot, p string) (*repo.Node, chunk.ID, error) {
	id := sn.Root
	dir := "/"
	var node *repo.Node
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	for i, part := range parts {
		if part == "" {
			continue
		}
		t, err := r.LoadTree(ctx, sn.Space, id)
		if err != nil {
			return nil, chunk.ID{}, err
		}
		n := t.Find(part)
		dir = path.Join(dir, part)
		if n == nil || (n.Type != repo.NodeDir && i < len(parts)-1) {
			return nil, chunk.ID{}, fmt.Errorf("snapshot %s: %s: %w", sn.ShortID(), dir, repo.ErrNotFound)
		}
		node = n
		if n.Type == repo.NodeDir {
			id = *n.Subtree
		}
	}
	return node, id, nil
}

// Walk calls fn for every node below start in a snapshot (start "/" is the
// whole snapshot; a start that is a file or symlink is called alone),
// depth first, in name order, with the node's path as `ls` shows it
// ("/a/b"). fn returning fs.SkipDir for a directory skips what is below it.
func Walk(ctx context.Context, r Repository, sn *repo.Snapshot, start string, fn func(p string, n *repo.Node) error) error {
	start = path.Clean("/" + start)
	n, id, err := Lookup(ctx, r, sn, start)
	if err != nil {
		return err
	}
	if n != nil && n.Type != repo.NodeDir {
		if err := fn(start, n); !errors.Is(err, fs.SkipDir) {
			return err
		}
		return nil
	}
	return walkTree(ctx, r, sn.Space, id, start, fn)
}

func walkTree(ctx context.Context, r Repository, space string, id chunk.ID, dir string, fn func(string, *repo.Node) error) error {
	t, err := r.LoadTree(ctx, space, id)
	if err != nil {
		return err
	}
	for _, n := range t.Nodes {
		p := path.Join(dir, n.Name)
		err := fn(p, n)
		if errors.Is(err, fs.SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == repo.NodeDir {
			if err := walkTree(ctx, r, space, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
