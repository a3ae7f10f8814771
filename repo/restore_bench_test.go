package repo

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkRestoreDurable is BenchmarkRestore until the restored files are
// on disk: each is fsynced after the restore, inside the timing, as the
// benchmark script's `sync` does. Without it a restore through the page
// cache looks done while its writeback has not started, and one that
// writes with O_DIRECT pays for the disk the other never waits for.
//
//	go test ./repo -run '^$' -bench RestoreDurable -benchtime 3x
func BenchmarkRestoreDurable(b *testing.B) { benchRestore(b, true) }

// benchRestore restores the benchmark tree once per iteration; durable
// fsyncs every restored file inside the timing.
func benchRestore(b *testing.B, durable bool) {
	src := filepath.Join(b.TempDir(), "src")
	size := writeBenchTree(b, src)
	tr := newTestRepo(b, InitOptions{})
	sn := tr.backup(b, BackupOptions{Paths: []string{src}})
	b.SetBytes(size)
	var cpu float64
	for b.Loop() {
		b.StopTimer()
		dst := filepath.Join(b.TempDir(), "dst")
		cpu -= processCPU()
		b.StartTimer()
		if _, err := tr.Restore(context.Background(), sn, dst, RestoreOptions{}); err != nil {
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
