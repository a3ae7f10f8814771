package restore

import (
	"context"
	"io/fs"
	"log/slog"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/directio"
	"memento/repo/repotest"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sync/errgroup"
)

// BenchmarkRestore measures restoring the same tree, every byte verified.
func BenchmarkRestore(b *testing.B) { benchRestore(b, false) }

// BenchmarkRestoreDurable is BenchmarkRestore until the restored files are
// on disk: each is fsynced after the restore, inside the timing, as the
// benchmark script's `sync` does. Without it a restore through the page
// cache looks done while its writeback has not started, and one that
// writes with O_DIRECT pays for the disk the other never waits for.
//
//	go test ./repo -run '^$' -bench RestoreDurable -benchtime 3x
func BenchmarkRestoreDurable(b *testing.B) { benchRestore(b, true) }

// BenchmarkRestoreSmallFiles restores a tree of 4,000 small files in 400
// directories (repotest.WriteSmallFileTree) through a freshly opened
// repository each time, as a restore command does: per-file costs (index
// lookups, file creation, metadata) dominate.
//
//	go test ./repo/restore -run '^$' -bench RestoreSmallFiles -benchtime 5x
func BenchmarkRestoreSmallFiles(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	size := repotest.WriteSmallFileTree(b, src)
	tr := repotest.New(b, repo.InitOptions{})
	sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	b.SetBytes(size)
	var cpu float64
	for b.Loop() {
		b.StopTimer()
		dst := filepath.Join(b.TempDir(), "dst")
		r := tr.Reopen(b)
		cpu -= processCPU()
		b.StartTimer()
		if _, err := Restore(context.Background(), r, sn, dst, RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += processCPU()
		os.RemoveAll(dst)
		b.StartTimer()
	}
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
}

// benchRestore restores the benchmark tree once per iteration; durable
// fsyncs every restored file inside the timing.
func benchRestore(b *testing.B, durable bool) {
	src := filepath.Join(b.TempDir(), "src")
	size := repotest.WriteBenchTree(b, src)
	tr := repotest.New(b, repo.InitOptions{})
	sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	b.SetBytes(size)
	var cpu float64
	for b.Loop() {
		b.StopTimer()
		dst := filepath.Join(b.TempDir(), "dst")
		cpu -= processCPU()
		b.StartTimer()
		if _, err := Restore(context.Background(), tr.Repository, sn, dst, RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
		if durable {
			if err := syncTree(dst); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu += processCPU()
		os.RemoveAll(dst)
		b.StartTimer()
	}
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
}

// processCPU is the user and system CPU time this process used, in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// syncTree fsyncs every regular file below dir.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

// BenchmarkStagingSync compares the two ways to put a staged restore on
// disk before its swap, on a tree like a restored space (300 WAL-sized files
// of 64 KiB in 10 directories, written each iteration): one syncfs(2) of the
// file system (staging.sync, what restores do), against an fsync of every
// file and directory by 8 goroutines (jbd2 batches concurrent fsyncs into
// one journal commit).
//
//	go test ./repo -run '^$' -bench StagingSync -benchtime 10x
func BenchmarkStagingSync(b *testing.B) {
	data := repotest.RandomBytes(3, 64<<10)
	write := func(b *testing.B) (*staging, []string) {
		st, err := newStaging(b.TempDir(), ".bench.restore-", slog.Default())
		if err != nil {
			b.Fatal(err)
		}
		paths := []string{st.dir}
		for i := range 300 {
			d := filepath.Join(st.dir, "d"+strconv.Itoa(i%10))
			if i < 10 {
				if err := os.Mkdir(d, 0o755); err != nil {
					b.Fatal(err)
				}
				paths = append(paths, d)
			}
			p := filepath.Join(d, "f"+strconv.Itoa(i))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			paths = append(paths, p)
		}
		return st, paths
	}
	b.Run("syncfs", func(b *testing.B) {
		for b.Loop() {
			st, _ := write(b)
			if err := st.sync(); err != nil {
				b.Fatal(err)
			}
			st.abort()
		}
	})
	b.Run("fsync8", func(b *testing.B) {
		for b.Loop() {
			st, paths := write(b)
			var g errgroup.Group
			g.SetLimit(8)
			for _, p := range paths {
				g.Go(func() error { return directio.SyncPath(p) })
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			st.abort()
		}
	})
}
