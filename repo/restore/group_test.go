package restore_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// streamCounter is a Repository that counts the blobs asked of StreamBlobs.
type streamCounter struct {
	*repo.Repository
	mu    sync.Mutex
	asked map[chunk.ID]int
}

func (s *streamCounter) StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error {
	s.mu.Lock()
	for _, id := range ids {
		s.asked[id]++
	}
	s.mu.Unlock()
	return s.Repository.StreamBlobs(ctx, space, t, ids, opts, fn)
}

// TestRestoreReadsEachGroupOnce: a tree of small files backed up into
// groups (format 6) restores byte for byte, its files written by four
// workers from their groups, each group read and decoded once, by one
// worker, and no member read on its own (through the Repository's shared
// cache of groups).
func TestRestoreReadsEachGroupOnce(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	for i := range 600 {
		dir := filepath.Join(src, "d"+strconv.Itoa(i%7))
		if i < 7 {
			repotest.Mkdir(t, dir, 0o755)
		}
		repotest.WriteFile(t, filepath.Join(dir, "f"+strconv.Itoa(i)), repotest.RandomBytes(uint64(i+1), 100+(i*4099)%(20<<10)), 0o644)
	}
	same := repotest.RandomBytes(7, 3000) // one member for two files
	repotest.WriteFile(t, filepath.Join(src, "same1"), same, 0o644)
	repotest.WriteFile(t, filepath.Join(src, "same2"), same, 0o644)
	want := repotest.DigestTree(t, src)
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	sc := &streamCounter{Repository: tr.Repository, asked: map[chunk.ID]int{}}
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := restore.Restore(context.Background(), sc, sn, dst, restore.RestoreOptions{Workers: 4}); err != nil {
		t.Fatal(err)
	}
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(dst, "src")))
	ids := make([]chunk.ID, 0, len(sc.asked))
	for id, n := range sc.asked {
		if n != 1 {
			t.Errorf("blob %s read %d times, want once", id.Short(), n)
		}
		ids = append(ids, id)
	}
	locs, err := tr.Locate("", ids)
	if err != nil {
		t.Fatal(err)
	}
	members := 0
	for _, l := range locs {
		if l.Flags&repo.FlagMember != 0 {
			members++
		}
	}
	if members != 0 || len(ids) == 0 || len(ids) > 20 {
		t.Fatalf("%d blobs read, %d of them members: want a few groups, no member read on its own", len(ids), members)
	}
}
