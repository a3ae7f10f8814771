package maintenance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// TestPruneRegroupEditCycles: four cycles of editing a fifth of 300 small
// files, backing up, forgetting the previous snapshot and pruning (max
// unused 10 %) leave packs within 15 % of a fresh backup's of the last
// state, and the last snapshot restores byte for byte, check --read-data
// clean. Without regrouping, every group stayed whole while one of its
// files was used: 71 % more than a fresh backup (1 % with it).
func TestPruneRegroupEditCycles(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"def", "return", "self", "import", "class", "for", "in", "if", "else", "while", "yield", "lambda", "value", "index", "node"}
	files := make([][]byte, 300)
	write := func(i int) {
		repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("m%03d.py", i)), files[i], 0o644)
	}
	for i := range files {
		for len(files[i]) < 3000 {
			files[i] = fmt.Appendf(files[i], "%s %s_%d\n", words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(100000))
		}
		write(i)
	}
	prev := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	var res *PruneResult
	for c := range 4 {
		for i := c; i < len(files); i += 5 {
			files[i] = fmt.Appendf(files[i], "# edit %d %d\n", c, rng.IntN(100000))
			write(i)
		}
		sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
		forgetAll(t, tr.Repository, prev)
		res = prune(t, tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
		prev = sn
	}
	if res.GroupsRegrouped == 0 {
		t.Errorf("the last prune regrouped nothing")
	}
	fresh := repotest.New(t, repo.InitOptions{})
	backuptest.Backup(t, fresh.Repository, backup.BackupOptions{Paths: []string{src}})
	got, want := packBytes(t, tr.Repository), packBytes(t, fresh.Repository)
	t.Logf("packs after 4 edit cycles: %d bytes, a fresh backup's %d", got, want)
	if float64(got) > 1.15*float64(want) {
		t.Errorf("packs after 4 edit cycles: %d bytes, a fresh backup's %d (+%.0f %%)", got, want, 100*float64(got-want)/float64(want))
	}
	mustCheck(t, tr.Repository, true)
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, prev), "src")))
}

// packBytes is the size of data/.
func packBytes(t *testing.T, r *repo.Repository) int64 {
	t.Helper()
	var n int64
	if err := r.Backend().List(context.Background(), repo.DirData, func(name string, size int64) error {
		n += size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}
