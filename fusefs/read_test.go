package fusefs

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// countingBackend counts the ranged reads of packs.
type countingBackend struct {
	repo.Backend
	packReads atomic.Int64
}

func (b *countingBackend) Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if strings.HasPrefix(name, "data/") {
		b.packReads.Add(1)
	}
	return b.Backend.Open(ctx, name, off, length)
}

// A sequential read of a page file of small fixed chunks through the mount is
// served from batched pack reads (a few MiB per request), not one request
// per chunk, whether the chunks come from the readahead or from the read
// itself; and the bytes are right.
func TestSequentialReadIsBatched(t *testing.T) {
	for _, ra := range []struct {
		name      string
		readahead int
	}{{"readahead", 0}, {"no readahead", -1}} {
		t.Run(ra.name, func(t *testing.T) {
			tr := repotest.New(t, repo.InitOptions{})
			dd := filepath.Join(t.TempDir(), "data")
			rel := "spaces/" + testSpace + "/warm/warm_tier.dat"
			makeTree(t, dd, []entry{{path: rel, size: 8 << 20, mode: 0o644, mtime: t0}})
			sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Space: testSpace, DataDir: dd})
			cb := &countingBackend{Backend: tr.Backend}
			r, err := repo.Open(context.Background(), cb, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
			if err != nil {
				t.Fatal(err)
			}
			chunks := len(fileNodeOf(t, r, sn, rel).Content)
			s, mp, logs := mount(t, r, Options{Readahead: ra.readahead})
			cb.packReads.Store(0)
			if !sameContent(t, filepath.Join(dd, rel), filepath.Join(mp, "snapshots", sn.ShortID(), rel)) {
				t.Fatal("bytes read through the mount differ from the source")
			}
			// 256 chunks of 32 KiB: with batching a few dozen reads at most.
			t.Logf("%d pack reads for %d chunks", cb.packReads.Load(), chunks)
			if n := cb.packReads.Load(); chunks != 8<<20/int(chunk.ParamsWarm.Max) || n > int64(chunks/8) {
				t.Errorf("%d pack reads for %d chunks, want at most %d", n, chunks, chunks/8)
			}
			if _, hits, misses, _ := s.FS.CacheStats(); misses < int64(chunks) || hits+misses < int64(chunks) {
				t.Errorf("cache: %d hits, %d misses for %d chunks", hits, misses, chunks)
			}
			if l := logs.String(); l != "" {
				t.Errorf("unexpected log output:\n%s", l)
			}
		})
	}
}

// The mount raises the kernel's readahead for itself (it needs root), so
// that the kernel sends 1 MiB reads; a negative KernelReadahead leaves it.
func TestKernelReadahead(t *testing.T) {
	requireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("setting a mount's read_ahead_kb needs root")
	}
	tr, _, _ := spaceFixture(t)
	for _, tt := range []struct {
		opt  int64
		want string
	}{{0, "4096"}, {1 << 20, "1024"}} {
		_, mp, _ := mount(t, tr.Repository, Options{KernelReadahead: tt.opt})
		if got := readaheadKB(t, mp); got != tt.want {
			t.Errorf("KernelReadahead %d: read_ahead_kb = %s, want %s", tt.opt, got, tt.want)
		}
	}
	_, mp, _ := mount(t, tr.Repository, Options{KernelReadahead: -1})
	if got := readaheadKB(t, mp); got == "4096" {
		t.Errorf("KernelReadahead -1: read_ahead_kb = %s, want the kernel's default", got)
	}
}

func readaheadKB(t *testing.T, mp string) string {
	t.Helper()
	dev, err := mountDevice(mp)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/sys/class/bdi/" + dev + "/read_ahead_kb")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
