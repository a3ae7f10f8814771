package inspect_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/inspect"
	"memento/repo/repotest"
)

// countingRepo is a real repository that counts the trees read through it.
type countingRepo struct {
	inspect.Repository
	loads map[chunk.ID]int
}

func (c *countingRepo) LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error) {
	c.loads[id]++
	return c.Repository.LoadTree(ctx, space, id)
}

func (c *countingRepo) total() int {
	n := 0
	for _, k := range c.loads {
		n += k
	}
	return n
}

// TestFindReadsSharedTreesOnce: three snapshots of a tree of which one
// directory changes between backups share the other directories' trees.
// Find reads each distinct tree once, finds the same paths as without the
// cache, and with a cache too small for any tree reads them per snapshot.
func TestFindReadsSharedTreesOnce(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	const dirs = 8
	for d := range dirs {
		write(t, filepath.Join(src, fmt.Sprintf("d%d", d), "f.txt"), []byte{byte(d)})
	}
	var sns []*repo.Snapshot
	for i := range 3 {
		write(t, filepath.Join(src, "d0", "f.txt"), []byte(fmt.Sprintf("version %d", i)))
		sns = append(sns, backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}}))
	}
	find := func(cacheBytes int64) (*countingRepo, []string) {
		c := &countingRepo{Repository: tr.Repository, loads: map[chunk.ID]int{}}
		var got []string
		err := inspect.Find(context.Background(), c, sns, inspect.FindOptions{Patterns: []string{"*.txt"}, TreeCacheBytes: cacheBytes},
			func(m inspect.Match) error {
				got = append(got, m.Snapshot[:8]+" "+m.Path)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		return c, got
	}
	cached, got := find(0)
	uncached, want := find(-1)
	if !slices.Equal(got, want) || len(got) != 3*dirs {
		t.Fatalf("find with the cache:\n%q\nwithout:\n%q", got, want)
	}
	// Per snapshot: its root, src/ and d0 are its own; d1..d7 are shared.
	distinct := 3*3 + dirs - 1
	if len(cached.loads) != distinct || cached.total() != distinct {
		t.Errorf("with the cache: %d distinct trees read %d times, want %d read once each", len(cached.loads), cached.total(), distinct)
	}
	if uncached.total() != 3*(2+dirs) {
		t.Errorf("without the cache: %d tree reads, want %d", uncached.total(), 3*(2+dirs))
	}
	tiny, _ := find(1) // bounded: no tree fits, every one is read again
	if tiny.total() != uncached.total() {
		t.Errorf("with a 1-byte cache: %d tree reads, want %d", tiny.total(), uncached.total())
	}
}
