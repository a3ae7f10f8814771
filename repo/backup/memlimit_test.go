package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/slabmem"
)

// TestBackupsGiveBackTheMemoryLimit: a backup's pack buffers raise the
// soft memory limit while its packer runs (packPool.shiftLimit). In one
// process running backup after backup (the agent), each sets it back where
// it was: one that succeeds, one that fails on a file, one cancelled in the
// middle, and one during which a restore's slabs (slabmem.Mem) hold the
// limit at its floor, released after the backup ended (the agent's
// verification beside its backup): that one left the limit raised by the
// pack buffers for good (session 27's review).
func TestBackupsGiveBackTheMemoryLimit(t *testing.T) {
	const limit = 96 << 20
	prev := debug.SetMemoryLimit(limit)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	for d := range 6 {
		for k := range 3 {
			repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("d%d", d), fmt.Sprintf("f%d", k)), repotest.RandomBytes(uint64(d*3+k), 700<<10), 0o644)
		}
	}
	check := func(what string) {
		t.Helper()
		if got := debug.SetMemoryLimit(-1); got != limit {
			t.Errorf("after %s: limit %d MiB, want %d MiB", what, got>>20, limit>>20)
		}
	}
	mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}, NoParent: true})
	check("a backup")

	ctx, cancel := context.WithCancel(t.Context())
	_, err := Backup(ctx, tr.Repository, BackupOptions{Paths: []string{src}, NoParent: true, smallSave: func(rel string) {
		if rel == "src/d3/f1" {
			cancel()
		}
	}})
	cancel()
	if err == nil {
		t.Fatal("a cancelled backup succeeded")
	}
	check("a cancelled backup")

	var mems []*slabmem.Mem
	var mu sync.Mutex
	saves := 0
	// A repository opened anew (the agent's next job): its pool
	// allocates its buffers, raising the limit, before the slabs come.
	fresh := repotest.New(t, repo.InitOptions{})
	sn := mustBackup(t, fresh.Repository, BackupOptions{Paths: []string{src}, NoParent: true, smallSave: func(rel string) {
		mu.Lock()
		defer mu.Unlock()
		if saves++; saves == 12 { // a restore starts beside the backup, its pack buffers out
			for range 2 {
				m := slabmem.New()
				for range slabmem.Cap / slabmem.MaxBlock {
					m.Get(slabmem.MaxBlock)
				}
				mems = append(mems, m)
			}
			if got := debug.SetMemoryLimit(-1); got != 72<<20 {
				t.Logf("limit %d MiB with the slabs mapped", got>>20)
			}
		}
	}})
	if sn.Summary.Files != 18 || len(mems) == 0 {
		t.Fatalf("%d files, %d Mems", sn.Summary.Files, len(mems))
	}
	for _, m := range mems {
		m.Release()
	}
	check("a backup beside a restore's slabs")
}
