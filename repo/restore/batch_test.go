package restore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// countingRepo counts the location lookups that reach the repository, and
// can make one chunk unknown to them.
type countingRepo struct {
	*repo.Repository
	locates atomic.Int64
	largest atomic.Int64 // the most IDs asked for at once
	hide    chunk.ID
}

func (c *countingRepo) Locate(space string, ids []chunk.ID) (map[chunk.ID]index.Location, error) {
	c.locates.Add(1)
	if n := int64(len(ids)); n > c.largest.Load() {
		c.largest.Store(n) // one restore walker asks for batches: no race that matters
	}
	locs, err := c.Repository.Locate(space, ids)
	if _, ok := locs[c.hide]; ok {
		delete(locs, c.hide)
		return locs, fmt.Errorf("blob %s: %w in the index", c.hide.Short(), repo.ErrNotFound)
	}
	return locs, err
}

// TestRestoreLooksUpChunksInBatches: a restore of many small files looks
// their chunks up a batch of files at a time, not once per file, and the
// files come back byte for byte; a chunk the index does not know still
// fails the restore naming its file, with nothing left in the target.
func TestRestoreLooksUpChunksInBatches(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	const dirs, perDir = 12, 25
	for d := range dirs {
		for f := range perDir {
			repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("d%02d", d), fmt.Sprintf("f%02d", f)), repotest.RandomBytes(uint64(d*100+f), 200+f), 0o644)
		}
	}
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})

	cr := &countingRepo{Repository: tr.Reopen(t)}
	target := filepath.Join(t.TempDir(), "out")
	if _, err := Restore(context.Background(), cr, sn, target, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(target, "src")))
	// The walker asks for every file's chunks at once (300 files of one
	// chunk, below one batch), so that each file's own lookup is answered
	// from the repository's cache, not by an index transaction per file.
	if n := cr.largest.Load(); n != dirs*perDir {
		t.Errorf("largest location lookup: %d chunks, want all %d at once", n, dirs*perDir)
	}
	cr = &countingRepo{Repository: tr.Reopen(t), hide: tr.NodeAt(t, sn, "src/d07/f13").Content[0]}
	target = filepath.Join(t.TempDir(), "out2")
	_, err := Restore(context.Background(), cr, sn, target, RestoreOptions{})
	if !errors.Is(err, repo.ErrNotFound) || !strings.Contains(err.Error(), "src/d07/f13") {
		t.Fatalf("restore with a chunk missing from the index: %v", err)
	}
	repotest.NoTempLeft(t, filepath.Dir(target))
}
