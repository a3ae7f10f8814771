package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/repotest"
)

// fullBackend is a local repository directory whose pack writes fail
// with ENOSPC after the first packs: a disk that fills up.
type fullBackend struct {
	repo.Backend
	packs, after int64
}

func (b *fullBackend) Write(ctx context.Context, name string, r io.Reader, size int64) error {
	if strings.HasPrefix(name, "data/") && atomic.AddInt64(&b.packs, 1) > b.after {
		return fmt.Errorf("write %s: %w", name, syscall.ENOSPC)
	}
	return b.Backend.Write(ctx, name, r, size)
}

// ListModTimes keeps the local backend's lock clock (repo.ModTimeLister).
func (b *fullBackend) ListModTimes(ctx context.Context, dir string, fn func(string, int64, time.Time) error) error {
	return b.Backend.(repo.ModTimeLister).ListModTimes(ctx, dir, fn)
}

// TestBackupStopsAtFailedPackWrite: a first backup onto a repository whose
// pack writes fail (a full disk, after 2 packs of 256 KiB) stops reading
// and compressing soon after the first failure and fails with that
// write's error, as Flush reports it (naming the pack, wrapping ENOSPC),
// with no snapshot. Before, it read and compressed all 80 MiB of its input
// and failed only at the end.
func TestBackupStopsAtFailedPackWrite(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 256 << 10})
	src := filepath.Join(t.TempDir(), "src")
	var total int64
	for i := range 8 { // streamed, chunk by chunk: 64 MiB
		d := repotest.RandomBytes(uint64(i+1), 8<<20)
		repotest.WriteFile(t, filepath.Join(src, "large", fmt.Sprintf("l%d", i)), d, 0o644)
		total += int64(len(d))
	}
	for i := range 2048 { // small files, read in batches
		d := repotest.RandomBytes(uint64(100+i), 8<<10)
		repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("s%02d", i/128), fmt.Sprintf("f%04d", i)), d, 0o644)
		total += int64(len(d))
	}
	be := &fullBackend{Backend: tr.Backend, after: 2}
	r, err := repo.Open(context.Background(), be, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if err != nil {
		t.Fatal(err)
	}
	prog := &repo.Progress{}
	sn, err := backup.Backup(context.Background(), r, backup.BackupOptions{Paths: []string{src}, Progress: prog})
	want := regexp.MustCompile(`^write pack [0-9a-f]+ \(\d+ blobs?, \d+ bytes\): write data/\S+: no space left on device$`)
	if sn != nil || err == nil || !errors.Is(err, syscall.ENOSPC) || !want.MatchString(err.Error()) {
		t.Fatalf("backup onto a full disk: snapshot %v, %v; want no snapshot and an error matching %s", sn, err, want)
	}
	if read := prog.Bytes.Load(); read > total/2 { // 6.8-18.4 MB of 84 in 7 runs; main reads it all
		t.Fatalf("%d of %d bytes read before the backup failed: want it to stop soon after the first failed pack write", read, total)
	} else {
		t.Logf("%d of %d bytes read, %d pack writes tried", read, total, atomic.LoadInt64(&be.packs))
	}
	if sns, err := tr.Reopen(t).Snapshots(context.Background()); err != nil || len(sns) != 0 {
		t.Fatalf("snapshots after the failed backup: %d, %v; want none", len(sns), err)
	}
}

// TestBackupStopsAtFailedPackWriteDeltas: the same for a backup whose new
// chunks are deltas of its parent's (a warm page file with a page changed
// in each of its 1,024 chunks): once a pack write failed, it stops storing
// them soon after, not at the end of the file, and fails with that write's
// error. (Before, the deltas went to the packer without the check: the
// backup computed a delta of every changed chunk, reading each parent
// chunk back, and failed only at Flush.)
func TestBackupStopsAtFailedPackWriteDeltas(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 256 << 10})
	src := t.TempDir()
	path := filepath.Join(src, "warm", "warm_tier.dat")
	const chunks = 1024
	old := compressiblePages(1, chunks*8, 3000) // 32 MiB, chunks of 8 pages
	repotest.WriteFile(t, path, old, 0o644)
	if _, err := backup.Backup(context.Background(), tr.Repository, backup.BackupOptions{Paths: []string{src}, Host: "h"}); err != nil {
		t.Fatal(err)
	}
	cur := bytes.Clone(old)
	for c := range chunks { // one page of each chunk: each a delta
		setPage(cur, c*8+3, 1000+uint64(c), 3000)
	}
	repotest.WriteFile(t, path, cur, 0o644)
	be := &fullBackend{Backend: tr.Backend, after: 2}
	r, err := repo.Open(context.Background(), be, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	if err != nil {
		t.Fatal(err)
	}
	prog := &repo.Progress{}
	sn, err := backup.Backup(context.Background(), r, backup.BackupOptions{Paths: []string{src}, Host: "h", Progress: prog})
	want := regexp.MustCompile(`^write pack [0-9a-f]+ \(\d+ blobs?, \d+ bytes\): write data/\S+: no space left on device$`)
	if sn != nil || err == nil || !errors.Is(err, syscall.ENOSPC) || !want.MatchString(err.Error()) {
		t.Fatalf("backup onto a full disk: snapshot %v, %v; want no snapshot and an error matching %s", sn, err, want)
	}
	if stored, total := prog.NewBytes.Load(), int64(len(cur)); stored > total/2 {
		t.Fatalf("%d of %d changed bytes stored before the backup failed: want it to stop soon after the first failed pack write", stored, total)
	} else {
		t.Logf("%d of %d changed bytes stored, %d pack writes tried", stored, total, atomic.LoadInt64(&be.packs))
	}
}
