package backup

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"memento/chunk"
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

// TestBackupsSharePipelineTinyPacks: eight backups at once through one
// Repository share a pipeline of two workers, as `backup --all`'s spaces
// do, with packs so small that nearly every blob closes one: the packers
// then wait for pack buffers all the time, and a worker waiting in one
// backup's packer must not keep the others' packs from being written.
// Every snapshot restores exactly. Bounded by a context's deadline.
func TestBackupsSharePipelineTinyPacks(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 8 << 10})
	const backups = 8
	srcs := make([]string, backups)
	for i := range srcs {
		srcs[i] = filepath.Join(t.TempDir(), "src"+strconv.Itoa(i))
		for j := range 3 {
			repotest.WriteFile(t, filepath.Join(srcs[i], "big"+strconv.Itoa(j)), repotest.RandomBytes(uint64(100*i+j), 1<<20+j), 0o644)
		}
		for j := range 10 {
			repotest.WriteFile(t, filepath.Join(srcs[i], "small"+strconv.Itoa(j)), repotest.RandomBytes(uint64(100*i+10+j), 10<<10), 0o644)
		}
	}
	pipe := chunk.NewPipeline(2, chunk.DefaultLevel) // closed once the backups end: Close waits for its workers
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sns := make([]*repo.Snapshot, backups)
	errs := make([]error, backups)
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for i, src := range srcs {
			wg.Go(func() {
				sns[i], errs[i] = Backup(context.Background(), tr.Repository, BackupOptions{Paths: []string{src}, Pipeline: pipe})
			})
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		pipe.Close()
	case <-ctx.Done():
		t.Fatal("deadlock: the backups did not finish")
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
	}
	for i, sn := range sns {
		want := repotest.DigestTree(t, srcs[i])
		repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src"+strconv.Itoa(i))))
	}
}
