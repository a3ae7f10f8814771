package backup

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// TestConcurrentBackups runs backups of the same paths at once, through one
// Repository and through two (as two processes would, sharing the cache):
// all succeed, and each snapshot restores exactly.
func TestConcurrentBackups(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 2 << 20})
	src := filepath.Join(t.TempDir(), "src")
	for i := range 6 {
		repotest.WriteFile(t, filepath.Join(src, "f"+strconv.Itoa(i)), repotest.RandomBytes(uint64(i), 1<<20+i), 0o644)
	}
	want := repotest.DigestTree(t, src)
	other := tr.Reopen(t)
	repos := []*repo.Repository{tr.Repository, tr.Repository, other, other}
	sns := make([]*repo.Snapshot, len(repos))
	errs := make([]error, len(repos))
	var wg sync.WaitGroup
	for i, r := range repos {
		wg.Go(func() {
			sns[i], errs[i] = Backup(context.Background(), r, BackupOptions{Paths: []string{src}, NoParent: i%2 == 1})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
	}
	r := tr.Reopen(t)
	tr.Repository = r
	all, err := r.Snapshots(context.Background())
	if err != nil || len(all) != len(repos) {
		t.Fatalf("%d snapshots after %d concurrent backups, %v", len(all), len(repos), err)
	}
	for _, sn := range sns {
		repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src")))
	}
	locks, err := r.Locks(context.Background())
	if err != nil || len(locks) != 0 {
		t.Errorf("locks left behind: %+v, %v", locks, err)
	}
}
