package inspect

import (
	"container/list"
	"context"

	"memento/chunk"
	"memento/repo"
)

// DefaultTreeCacheBytes bounds the trees one Find keeps (estimated
// decoded size), FindOptions.TreeCacheBytes.
const DefaultTreeCacheBytes = 64 << 20

// treeCache is a Repository whose LoadTree keeps the trees it decoded, so
// that a tree several snapshots share (a directory unchanged between
// backups, the usual case) is read, verified and decoded once per run,
// not once per snapshot. It belongs to one run (Find) and is dropped with
// it; at most max bytes (treeBytes) are kept, the least recently used tree
// evicted first. The trees it returns are shared: callers read them only.
// One goroutine uses it.
type treeCache struct {
	Repository
	max, size int64
	items     map[treeKey]*list.Element // of *cachedTree
	lru       *list.List                // front: most recently used
}

type treeKey struct {
	space string
	id    chunk.ID
}

type cachedTree struct {
	key  treeKey
	tree *repo.Tree
	size int64
}

func newTreeCache(r Repository, max int64) *treeCache {
	return &treeCache{Repository: r, max: max, items: map[treeKey]*list.Element{}, lru: list.New()}
}

// LoadTree returns the tree from the cache, or loads and keeps it. Errors
// are not kept.
func (c *treeCache) LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error) {
	k := treeKey{repo.StorageSpace(space), id}
	if e, ok := c.items[k]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cachedTree).tree, nil
	}
	t, err := c.Repository.LoadTree(ctx, space, id)
	if err != nil {
		return nil, err
	}
	n := treeBytes(t)
	if n > c.max {
		return t, nil
	}
	for c.size+n > c.max {
		last := c.lru.Back()
		old := last.Value.(*cachedTree)
		c.lru.Remove(last)
		delete(c.items, old.key)
		c.size -= old.size
	}
	c.items[k] = c.lru.PushFront(&cachedTree{key: k, tree: t, size: n})
	c.size += n
	return t, nil
}

// treeBytes estimates the memory a decoded tree holds.
func treeBytes(t *repo.Tree) int64 {
	const nodeBytes = 200 // the Node struct and its pointers
	n := int64(64)
	for _, nd := range t.Nodes {
		n += nodeBytes + int64(len(nd.Name)+len(nd.LinkTarget)+len(nd.Content)*len(chunk.ID{}))
		for _, x := range nd.Xattrs {
			n += int64(len(x.Name) + len(x.Value) + 48)
		}
	}
	return n
}
