package fusefs

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// benchFile backs up one file of size bytes (1 GiB, 256 MiB with -short)
// of text-like data (about 6 bits of entropy per byte, so zstd works) and
// returns the repository, the snapshot and the file's path inside it.
func benchFile(b *testing.B) (*repotest.Repo, *repo.Snapshot, string, int64) {
	b.Helper()
	size := int64(1 << 30)
	if testing.Short() {
		size = 256 << 20
	}
	tr := repotest.New(b, repo.InitOptions{})
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
	sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
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
		if _, err := restore.Restore(context.Background(), tr.Repository, sn, target, restore.RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(target)
		b.StartTimer()
	}
}

// BenchmarkMountListTree runs `ls -lR` over a snapshot of 100,000 files
// (10,000 with -short) in 100 directories, warm: after one cold listing, as
// an operator browsing a mount sees it. It reports entries/s.
func BenchmarkMountListTree(b *testing.B) {
	requireFUSE(b)
	ls, err := exec.LookPath("ls")
	if err != nil {
		b.Skip("no ls")
	}
	files := 100_000
	if testing.Short() {
		files = 10_000
	}
	tr := repotest.New(b, repo.InitOptions{})
	src := filepath.Join(b.TempDir(), "src")
	for i := range files {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", i%100))
		if i < 100 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%06d.txt", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	_, mp, _ := mount(b, tr.Repository, Options{})
	root := filepath.Join(mp, "snapshots", sn.ShortID())
	run := func() {
		cmd := exec.Command(ls, "-lR", root)
		cmd.Stdout = io.Discard
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	run()
	cold := time.Since(start)
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.ReportMetric(float64(files)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(cold.Milliseconds()), "cold-ms")
}

// BenchmarkMountReady measures, for a repository of 1,000 snapshots (100
// with -short), the time from opening the repository (warm local index) to
// a mounted filesystem whose snapshots/ has been listed once.
func BenchmarkMountReady(b *testing.B) {
	requireFUSE(b)
	n := 1000
	if testing.Short() {
		n = 100
	}
	tr := repotest.New(b, repo.InitOptions{})
	src := filepath.Join(b.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(src, "f"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			b.Fatal(err)
		}
		backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}, Tags: []string{fmt.Sprintf("t%d", i%10)}})
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		mp := filepath.Join(b.TempDir(), "mnt")
		if err := os.Mkdir(mp, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		r := tr.Reopen(b)
		s, err := Mount(r, mp, Options{})
		if err != nil {
			b.Fatal(err)
		}
		es, err := os.ReadDir(filepath.Join(mp, "snapshots"))
		if err != nil || len(es) != n+1 {
			b.Fatalf("snapshots/ has %d entries, %v", len(es), err)
		}
		b.StopTimer()
		if _, err := s.Unmount(5 * time.Second); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/mount")
}
