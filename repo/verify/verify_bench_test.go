package verify_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/verify"
)

// BenchmarkVerifyL2 measures L2 throughput in MB/s of pack bytes read,
// decrypted and hashed (every chunk's keyed BLAKE3 and every file's BLAKE3),
// data-MB/s of plaintext verified, the CPU seconds per GiB of plaintext and
// the bytes read twice (chunks that arrived too far ahead of their files),
// on a repository of 192 MiB: three quarters incompressible, one quarter
// compressible text, as Engram's embeddings and contents are.
//
//	go test ./repo/verify -run '^$' -bench VerifyL2 -benchtime 5x
func BenchmarkVerifyL2(b *testing.B) {
	tr := repotest.New(b, repo.InitOptions{})
	src := filepath.Join(b.TempDir(), "src")
	const files = 8
	for i := range files {
		data := repotest.RandomBytes(uint64(i+1), 24<<20)
		if i%4 == 3 {
			for j := range data {
				data[j] = "memories are made of this "[j%26]
			}
		}
		repotest.WriteFile(b, filepath.Join(src, "f"+itoa(uint64(i))), data, 0o644)
	}
	sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	ctx := context.Background()
	var read, reread float64
	cpu0 := cpuSeconds(b)
	b.ResetTimer()
	for b.Loop() {
		vds, err := verify.VerifySnapshots(ctx, tr.Repository, []chunk.ID{sn.ID}, verify.VerifyOptions{Level: verify.L2})
		if err != nil || !vds[0].Passed {
			b.Fatalf("%v %+v", err, vds)
		}
		read = vds[0].Figures["bytes_read"]
		reread = vds[0].Figures["reread_bytes"]
	}
	cpu := cpuSeconds(b) - cpu0
	b.SetBytes(int64(read))
	data := float64(sn.Summary.Bytes) * float64(b.N)
	b.ReportMetric(data/1e6/b.Elapsed().Seconds(), "data-MB/s")
	// CPU seconds (user and system, every core) per GiB of data verified:
	// what L2 costs whatever the machine's load, unlike MB/s.
	b.ReportMetric(cpu/(data/(1<<30)), "cpu-s/GiB")
	b.ReportMetric(reread/1e6, "reread-MB")
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkVerifyL1 measures L1 on a snapshot of 2,000 files in 200
// directories (reported as ms per snapshot; the target is under 1 s).
//
//	go test ./repo/verify -run '^$' -bench VerifyL1 -benchtime 20x
func BenchmarkVerifyL1(b *testing.B) {
	tr := repotest.New(b, repo.InitOptions{})
	src := filepath.Join(b.TempDir(), "src")
	for i := range 2000 {
		repotest.WriteFile(b, filepath.Join(src, "d"+itoa(uint64(i%200)), "f"+itoa(uint64(i))), repotest.RandomBytes(uint64(i), 2000+i), 0o644)
	}
	sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		vds, err := verify.VerifySnapshots(ctx, tr.Repository, []chunk.ID{sn.ID}, verify.VerifyOptions{Level: verify.L1})
		if err != nil || !vds[0].Passed {
			b.Fatalf("%v %+v", err, vds)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/snapshot")
}

// BenchmarkVerifyL2Repo is BenchmarkVerifyL2 on a repository of real data
// (a copy: the local index is cached under the benchmark's temporary
// directory), e.g. a 1 GiB wal-heavy data dir backed up with --all:
//
//	MEMENTO_BENCH_REPO=/tmp/vs/repo MEMENTO_BENCH_PASSWORD=pw \
//	  go test ./repo/verify -run '^$' -bench VerifyL2Repo -benchtime 3x
//
// Every snapshot is verified per iteration, under the Go memory limit the
// memento command sets (200 MiB: the heap's size decides how often the GC
// runs and drops pooled buffers); alloc-MB/GiB is the heap memory allocated
// per GiB of data, most of it fresh buffers zeroed and faulted in.
// Skipped without the variable.
func BenchmarkVerifyL2Repo(b *testing.B) {
	dir := os.Getenv("MEMENTO_BENCH_REPO")
	if dir == "" {
		b.Skip("MEMENTO_BENCH_REPO is not set")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(200 << 20))
	ctx := context.Background()
	be, err := local.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	r, err := repo.Open(ctx, be, repo.Options{Password: os.Getenv("MEMENTO_BENCH_PASSWORD"), CacheDir: b.TempDir(), Lock: repo.LockOptions{ReadOnly: true, NoLock: true}})
	if err != nil {
		b.Fatal(err)
	}
	sns, err := r.Snapshots(ctx)
	if err != nil || len(sns) == 0 {
		b.Fatalf("snapshots: %d, %v", len(sns), err)
	}
	var ids []chunk.ID
	for _, sn := range sns {
		ids = append(ids, sn.ID)
	}
	var data, read, reread float64
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuSeconds(b)
	b.ResetTimer()
	for b.Loop() {
		vds, err := verify.VerifySnapshots(ctx, r, ids, verify.VerifyOptions{Level: verify.L2})
		if err != nil {
			b.Fatal(err)
		}
		data, read, reread = 0, 0, 0
		for _, vd := range vds {
			if !vd.Passed {
				b.Fatalf("%s did not pass", vd.Short())
			}
			data += vd.Figures["data_bytes"]
			read += vd.Figures["bytes_read"]
			reread += vd.Figures["reread_bytes"]
		}
	}
	cpu := cpuSeconds(b) - cpu0
	runtime.ReadMemStats(&ms1)
	b.SetBytes(int64(read))
	b.ReportMetric(data*float64(b.N)/1e6/b.Elapsed().Seconds(), "data-MB/s")
	b.ReportMetric(cpu/(data*float64(b.N)/(1<<30)), "cpu-s/GiB")
	b.ReportMetric(reread/1e6, "reread-MB")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/1e6/(data*float64(b.N)/(1<<30)), "alloc-MB/GiB")
}
