package backup_test

import (
	"context"
	"io"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/repotest"
)

// countingBackend counts the files written and deleted per top-level
// directory of the repository (locks, snapshots, index, data, logs...).
type countingBackend struct {
	repo.Backend
	mu      sync.Mutex
	writes  map[string]int
	deletes map[string]int
}

func newCountingBackend(be repo.Backend) *countingBackend {
	return &countingBackend{Backend: be, writes: map[string]int{}, deletes: map[string]int{}}
}

func topDir(name string) string {
	dir, _, _ := strings.Cut(name, "/")
	return dir
}

func (b *countingBackend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	b.mu.Lock()
	b.writes[topDir(name)]++
	b.mu.Unlock()
	return b.Backend.Write(ctx, name, r, size)
}

func (b *countingBackend) Delete(ctx context.Context, name string) error {
	b.mu.Lock()
	b.deletes[topDir(name)]++
	b.mu.Unlock()
	return b.Backend.Delete(ctx, name)
}

// ListModTimes keeps the local backend's lock clock (repo.ModTimeLister).
func (b *countingBackend) ListModTimes(ctx context.Context, dir string, fn func(string, int64, time.Time) error) error {
	return b.Backend.(repo.ModTimeLister).ListModTimes(ctx, dir, fn)
}

// TestUnchangedSpacesWriteOnlyTheirManifests: an unchanged re-backup of
// three spaces under one shared lock (BackupOptions.Locked, as `backup
// --all` runs them) writes one lock file and removes it, and writes one
// manifest per space: no pack, no index file, no lock of its own per space.
// It guards the unchanged re-backup's fixed cost (docs/benchmarks.md,
// "Issue 18, session 7"): each lock file costs an fsync of the file and
// two of its directory.
func TestUnchangedSpacesWriteOnlyTheirManifests(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	spaces := []string{"s1", "s2", "s3"}
	for _, sp := range spaces {
		repotest.WriteEngramSpace(t, dd, sp, 300, 16<<10, 100)
	}
	for _, sp := range spaces {
		if _, err := backup.BackupSpace(ctx, tr.Repository, backup.BackupOptions{Space: sp, DataDir: dd}, backup.SpaceOptions{}); err != nil {
			t.Fatalf("first backup of %s: %v", sp, err)
		}
	}

	cb := newCountingBackend(tr.Backend)
	r, err := repo.Open(ctx, cb, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := r.Lock(ctx, false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	sns := make([]*repo.Snapshot, len(spaces))
	errs := make([]error, len(spaces))
	for i, sp := range spaces {
		wg.Go(func() {
			sns[i], errs[i] = backup.BackupSpace(lock.Context(), r, backup.BackupOptions{Space: sp, DataDir: dd, Locked: true}, backup.SpaceOptions{})
		})
	}
	wg.Wait()
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	for i, sp := range spaces {
		if errs[i] != nil {
			t.Fatalf("unchanged backup of %s: %v", sp, errs[i])
		}
		if s := sns[i].Summary; s.NewBytes != 0 || s.NewChunks != 0 || s.UnchangedFiles != s.Files {
			t.Fatalf("unchanged backup of %s: %+v", sp, s)
		}
	}
	wantWrites := map[string]int{repo.DirLocks: 1, repo.DirSnapshots: len(spaces)}
	wantDeletes := map[string]int{repo.DirLocks: 1}
	if !maps.Equal(cb.writes, wantWrites) || !maps.Equal(cb.deletes, wantDeletes) {
		t.Fatalf("unchanged re-backup of %d spaces wrote %v and deleted %v, want %v and %v",
			len(spaces), cb.writes, cb.deletes, wantWrites, wantDeletes)
	}
}
