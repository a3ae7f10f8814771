package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"memento/repo/backend/s3/miniotest"
)

// TestChaosEnvSmoke is make test's short case of `make chaos-env`
// (TestChaosDiskFull, TestChaosNetwork): the repository's file system fills
// up in the middle of a backup (a small tmpfs, root), and the network to
// MinIO is partitioned in the middle of an S3 backup (the fault proxy).
// Each run fails with one line, exit 1, keeps no snapshot and no temporary
// file; once there is room or the network heals, the next run completes,
// `check --read-data` is clean and the data restores byte for byte.
func TestChaosEnvSmoke(t *testing.T) {
	t.Run("disk-full", func(t *testing.T) {
		chaosRequireRoot(t)
		fsDir := mountTmpfs(t, "16m")
		e := &env{t: t, repo: filepath.Join(fsDir, "repo"), cache: filepath.Join(t.TempDir(), "cache"), password: "correct horse"}
		e.mustRun("init")
		src1 := writeTree(t, 200<<10, 3000)
		e.mustRun("backup", src1)
		before := e.snapshotIDs()
		// 4 MiB of new, incompressible data, 256 KiB of room: the lock and
		// a pack or two fit, the rest does not.
		src2 := writeTree(t, 2<<20, 2<<20)
		filler := fillFileSystem(t, fsDir)
		fi, err := os.Stat(filler)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filler, fi.Size()-256<<10); err != nil {
			t.Fatal(err)
		}
		r := e.run("backup", src2)
		e.wantFailAgain(r, exitFailure, "no space left on device", "backup", src2)
		if !strings.Contains(r.stderr, "(the file system of "+e.repo+" is full)") {
			t.Errorf("the error does not name the repository path %s:\n%s", e.repo, r.stderr)
		}
		if got := e.snapshotIDs(); len(got) != len(before) {
			t.Errorf("the failed backup left a snapshot: %v, before %v", got, before)
		}
		if tmp := tempFilesIn(t, e.repo); len(tmp) > 0 {
			t.Errorf("the failed backup left temporary files: %v", tmp)
		}
		// No room at all: the lock cannot be written, nor the audit
		// record of the failure; both said on the one line.
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		filler = fillFileSystem(t, fsDir)
		r = e.run("backup", src2)
		r = e.wantFailAgain(r, exitFailure, "no space left on device", "backup", src2)
		if !strings.HasSuffix(strings.TrimSpace(r.stderr), "is full); 1 audit record not written either") {
			t.Errorf("with no room: want the lost audit record on the error line, got:\n%s", r.stderr)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		e.mustRun("check", "--read-data")
		e.mustRun("backup", src2)
		e.mustRun("check", "--read-data")
		e.restoreLatestOf(src1)
		e.restoreLatestOf(src2)
	})
	t.Run("network-partition", func(t *testing.T) {
		srv := miniotest.Start(t)
		p := miniotest.NewProxy(t, srv.Endpoint)
		bucket := srv.MakeBucket(t)
		e := &env{t: t, repo: miniotest.URL(p.Addr, bucket, "primary"), cache: filepath.Join(t.TempDir(), "cache"),
			password: "correct horse", extra: append(srv.Env(), "MEMENTO_S3_TIMEOUT=60s")}
		tight := *e
		tight.extra = append(srv.Env(), "MEMENTO_S3_TIMEOUT=1s", "MEMENTO_S3_RETRIES=1")
		direct := e.with(srv.URL(bucket, "primary"))
		e.mustRun("init")
		src1 := writeTree(t, 200<<10, 3000)
		e.mustRun("backup", src1)
		before := direct.snapshots()
		src2 := writeTree(t, 2<<20, 2<<20)
		r, took := runPartitionedTimed(&tight, p, 512<<10, "backup", src2)
		// One line: the error naming the unreachable endpoint, the bucket
		// and the object, and on it the audit record of the failure, which
		// could not reach the repository either (no warning line beside it).
		r = e.wantFailAgain(r, exitFailure, "endpoint unreachable", "backup", src2)
		if !strings.HasSuffix(strings.TrimSpace(r.stderr), "; 1 audit record not written either") {
			t.Errorf("partitioned S3 backup: want the lost audit record on the error line, got:\n%s", r.stderr)
		}
		if line := strings.TrimSpace(r.stderr); !strings.Contains(line, `(bucket "`+bucket+`", key "primary/`) || !strings.Contains(line, p.Addr) {
			t.Errorf("partitioned S3 backup: want the error to name the bucket %q, the key and the endpoint %s, got:\n%s", bucket, p.Addr, line)
		}
		t.Logf("partitioned S3 backup failed %.1fs after the partition: %s", took.Seconds(), strings.TrimSpace(r.stderr))
		// The settings' budget (docs/replication.md): the failing operation
		// makes 1+1 attempts of 1 s with at most 1 s of backoff between
		// them; then the audit record and the lock's removal try once, 1 s
		// each: 5 s. Twice that for a loaded machine; it took ~24 s when
		// minio-go's own retries ran inside ours.
		if limit := 10 * time.Second; took > limit {
			t.Errorf("partitioned S3 backup (timeout 1s, 1 retry) failed %.1fs after the partition, want within %s", took.Seconds(), limit)
		}
		if got := direct.snapshots(); len(got) != len(before) {
			t.Errorf("a partitioned backup left a snapshot: %v, before %v", got, before)
		}
		direct.mustRun("check", "--read-data")
		e.mustRun("backup", src2)
		direct.mustRun("check", "--read-data")
		direct.restoreLatestOf(src1)
		direct.restoreLatestOf(src2)
	})
}
