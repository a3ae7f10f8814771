package fusefs

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"memento/repo"
)

// benchFile backs up one file of size bytes (1 GiB, 256 MiB with -short)
// of text-like data (about 6 bits of entropy per byte, so zstd works) and
// returns the repository, the snapshot and the file's path inside it.
func benchFile(b *testing.B) (*testRepo, *repo.Snapshot, string, int64) {
	b.Helper()
	size := int64(1 << 30)
	if testing.Short() {
		size = 256 << 20
	}
	tr := newTestRepo(b)
	src := filepath.Join(b.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(src, "big.dat"))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for left := size; left > 0; {
		n := min(left, 4<<20)
		if _, err := f.Write(pseudoRandom(rng, int(n))); err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	sn := tr.backup(b, repo.BackupOptions{Paths: []string{src}})
	return tr, sn, "src/big.dat", size
}

// BenchmarkMountSequentialRead reads a large file through a fresh mount per
// iteration (empty chunk cache, empty kernel page cache for the mount), in
// 1 MiB reads like cp. Compare with BenchmarkRestoreFile on the same data.
func BenchmarkMountSequentialRead(b *testing.B) {
	requireFUSE(b)
	tr, sn, rel, size := benchFile(b)
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		mp := filepath.Join(b.TempDir(), "mnt")
		if err := os.Mkdir(mp, 0o755); err != nil {
			b.Fatal(err)
		}
		s, err := Mount(tr.Repository, mp, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		f, err := os.Open(filepath.Join(mp, "snapshots", sn.ShortID(), rel))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf)
		f.Close()
		if err != nil || n != size {
			b.Fatalf("read %d of %d bytes: %v", n, size, err)
		}
		b.StopTimer()
		if _, err := s.Unmount(5 * time.Second); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// onlyReader hides WriteTo so io.CopyBuffer really reads in buffer-sized pieces.
type onlyReader struct{ io.Reader }

// BenchmarkRestoreFile is the baseline: `memento restore` of the same file.
func BenchmarkRestoreFile(b *testing.B) {
	tr, sn, _, size := benchFile(b)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		target := filepath.Join(b.TempDir(), "restore")
		if _, err := tr.Restore(context.Background(), sn, target, repo.RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(target)
		b.StartTimer()
	}
}
