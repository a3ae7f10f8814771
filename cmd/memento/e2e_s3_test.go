package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/repo/backend/s3/miniotest"
)

// newS3Env is an environment whose repository is a fresh bucket on a real
// MinIO (started for the test), initialized.
func newS3Env(t *testing.T, srv *miniotest.Server) *env {
	t.Helper()
	d := t.TempDir()
	e := &env{t: t, repo: srv.URL(srv.MakeBucket(t), "engram"), cache: filepath.Join(d, "cache"), password: "correct horse",
		extra: append(srv.Env(), "MEMENTO_S3_TIMEOUT=5s")}
	e.mustRun("init")
	return e
}

// with returns a copy of e pointing at another repository.
func (e *env) with(repoURL string) *env {
	c := *e
	c.repo = repoURL
	c.cache = filepath.Join(e.t.TempDir(), "cache")
	return &c
}

// writeTree makes a directory of files of the given sizes (pseudo-random,
// incompressible) and returns it.
func writeTree(t *testing.T, sizes ...int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	for i, n := range sizes {
		p := filepath.Join(dir, fmt.Sprintf("sub%d", i%3), fmt.Sprintf("file%02d.bin", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		x := uint64(i+1) * 0x9E3779B97F4A7C15
		for j := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[j] = byte(x)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sameTree fails unless every file under want is under got with the same bytes.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil {
			return fmt.Errorf("restored tree: %w", err)
		}
		if string(a) != string(b) {
			return fmt.Errorf("%s differs after restore", rel)
		}
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("compare %s with %s: %d files, %v", want, got, n, err)
	}
}

// restoreLatest restores the latest snapshot and compares it with src.
func (e *env) restoreLatest(src string) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "restored")
	e.mustRun("restore", "latest", "--target", dst)
	sameTree(e.t, src, inSnapshot(e.t, dst, src))
}

type snapshotJSON struct {
	ID   string `json:"id"`
	Host string `json:"host"`
}

func (e *env) snapshots() []snapshotJSON {
	e.t.Helper()
	var out []snapshotJSON
	if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestS3BackupRestorePITR(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3Env(t, srv)
	src := writeTree(t, 40<<20, 3<<20, 1000, 0, 70<<10)
	e.mustRun("backup", src, "--s3-storage-class", "STANDARD")
	e.restoreLatest(src)
	// Nothing was stored outside the prefix.
	for k := range srv.Keys(t, strings.Split(e.repo, "/")[3], "") {
		if !strings.HasPrefix(k, "engram/") {
			t.Fatalf("key %s outside the repository prefix", k)
		}
	}

	// Engram: a full backup, more WAL, archived; then point-in-time restores.
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "3000", "--segment-size", "64KiB", "--dim", "16", "--seed", "5")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "2000")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	for _, seq := range []string{"3000", "4200", "5000"} {
		e.pitr("space-a", "--to-seq", seq, e.simTruth(dd, "space-a", "--to-seq", seq))
	}
}

// Replicate a local primary to MinIO and to a second directory, lose the
// primary, restore (and PITR) from each replica.
func TestReplicateRestoreAfterLosingPrimary(t *testing.T) {
	srv := miniotest.Start(t)
	e := newEnv(t)
	e.extra = append(e.extra, srv.Env()...)
	src := writeTree(t, 20<<20, 1<<20, 5000)
	e.mustRun("backup", src)
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "2000", "--segment-size", "64KiB", "--dim", "16", "--seed", "9")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "1000")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	want := e.simTruth(dd, "space-a", "--to-seq", "2500")

	remote := srv.URL(srv.MakeBucket(t), "replica")
	second := filepath.Join(t.TempDir(), "second")
	var sum replicateJSON
	if err := json.Unmarshal([]byte(e.mustRun("replicate", "--to", remote, "--to", second, "--verify", "--json")), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Destinations) != 2 || sum.Files == 0 || sum.Files != sum.Destinations[0].Files*2 || sum.Bytes == 0 || sum.Skipped != 0 || sum.Seconds <= 0 {
		t.Fatalf("replicate summary %+v", sum)
	}
	// A rerun copies nothing new but the audit record of the first run.
	if err := json.Unmarshal([]byte(e.mustRun("replicate", "--to", remote, "--to", second, "--json")), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Files != 2 || sum.Skipped == 0 {
		t.Fatalf("rerun summary %+v (want just the audit record copied)", sum)
	}

	if err := os.RemoveAll(e.repo); err != nil {
		t.Fatal(err)
	}
	e.wantFail(exitNoRepository, "no repository", "snapshots")
	for _, r := range []string{remote, second} {
		re := e.with(r)
		re.restoreLatestOf(src)
		re.pitr("space-a", "--to-seq", "2500", want)
	}
}

// restoreLatestOf restores the latest snapshot of the paths backup of src.
func (e *env) restoreLatestOf(src string) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "restored")
	out := e.mustRun("snapshots", "--json")
	var list []struct {
		ID    string   `json:"id"`
		Paths []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range list {
		if len(s.Paths) == 1 && s.Paths[0] == src {
			e.mustRun("restore", s.ID, "--target", dst)
			sameTree(e.t, src, inSnapshot(e.t, dst, src))
			return
		}
	}
	e.t.Fatalf("no snapshot of %s in %s", src, out)
}

// kill -9 in the middle of a replication to MinIO, rerun: the destination
// is valid after the kill and complete after the rerun.
func TestReplicateKill9(t *testing.T) {
	srv := miniotest.Start(t)
	e := newEnv(t)
	e.extra = append(e.extra, srv.Env()...)
	src := writeTree(t, 6<<20, 6<<20, 6<<20, 6<<20, 100)
	e.mustRun("backup", src)
	src2 := writeTree(t, 3<<20, 200)
	e.mustRun("backup", src2)
	remote := srv.URL(srv.MakeBucket(t), "r")
	// 2 MiB/s: the 27 MiB take many seconds; kill after a second and a half.
	cmd, out := e.start(mementoBin, "replicate", "--to", remote, "--bwlimit", "2MiB", "--parallel", "2")
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if strings.Contains(out.String(), "replicated to") {
		t.Fatalf("replication finished before the kill; the test tests nothing: %s", out)
	}
	re := e.with(remote)
	// Valid right after the kill: whatever it lists, it can read. (The
	// config may not have been copied yet, which is "no repository".)
	if r := re.run("snapshots", "--json"); r.code == 0 {
		var list []snapshotJSON
		_ = json.Unmarshal([]byte(r.stdout), &list)
		for _, s := range list {
			re.mustRun("restore", s.ID, "--target", filepath.Join(t.TempDir(), "partial"))
		}
	} else if r.code != exitNoRepository && r.code != exitWrongPassword {
		t.Fatalf("replica after kill -9: exit %d: %s", r.code, r.stderr)
	}
	var sum replicateJSON
	if err := json.Unmarshal([]byte(e.mustRun("replicate", "--to", remote, "--verify", "--json")), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Skipped == 0 {
		t.Fatalf("the rerun copied everything again: %+v", sum)
	}
	re.restoreLatestOf(src)
	re.restoreLatestOf(src2)
}

// Two hosts back up into one bucket at the same time: both snapshots are
// complete, and each host's lock was visible to the other.
func TestS3TwoHostsConcurrentBackups(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3Env(t, srv)
	srcA := writeTree(t, 12<<20, 1<<20, 300)
	srcB := writeTree(t, 9<<20, 2<<20, 400)
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i, job := range []struct{ host, src string }{{"host-a", srcA}, {"host-b", srcB}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.run("backup", "--host", job.host, job.src)
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("backup %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	hosts := map[string]bool{}
	for _, s := range e.snapshots() {
		hosts[s.Host] = true
	}
	if !hosts["host-a"] || !hosts["host-b"] {
		t.Fatalf("snapshots of hosts %v", hosts)
	}
	e.restoreLatestOf(srcA)
	e.restoreLatestOf(srcB)
	// Locks are gone after both finished.
	if keys := srv.Keys(t, strings.Split(e.repo, "/")[3], "engram/locks/"); len(keys) != 0 {
		t.Fatalf("locks left behind: %v", keys)
	}
}

func TestS3Errors(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3Env(t, srv)
	bucket := strings.Split(e.repo, "/")[3]

	bad := e.with(e.repo)
	bad.extra = []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=wrong-secret"}
	r := bad.wantFail(exitFailure, `bucket "`+bucket+`"`, "snapshots")
	if !strings.Contains(r.stderr, "access denied") || !strings.Contains(r.stderr, srv.Endpoint) {
		t.Fatalf("wrong credentials: %q", r.stderr)
	}

	missing := e.with(srv.URL("no-such-bucket", "x"))
	r = missing.wantFail(exitNoRepository, `bucket "no-such-bucket"`, "snapshots")
	if !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("missing bucket: %q", r.stderr)
	}

	nocreds := e.with(e.repo)
	nocreds.extra = nil
	nocreds.wantFail(exitUsage, "no credentials", "snapshots")

	down := e.with(miniotest.URL(closedAddr(t), bucket, "x"))
	down.extra = append(down.extra, "MEMENTO_S3_RETRIES=1")
	down.wantFail(exitFailure, "endpoint unreachable", "snapshots")

	e.wantFail(exitUsage, "no bucket", "--repo", "s3:http://"+srv.Endpoint, "snapshots")
}

// Backups through a loopback proxy that resets and stalls connections: each
// either succeeds or fails with a clear error, and every snapshot the
// repository lists restores completely.
func TestS3FaultyNetwork(t *testing.T) {
	srv := miniotest.Start(t)
	p := miniotest.NewProxy(t, srv.Endpoint)
	bucket := srv.MakeBucket(t)
	d := t.TempDir()
	e := &env{t: t, repo: miniotest.URL(p.Addr, bucket, "r"), cache: filepath.Join(d, "cache"), password: "pw",
		extra: append(srv.Env(), "MEMENTO_S3_TIMEOUT=1s")}
	e.mustRun("init")
	direct := e.with(srv.URL(bucket, "r")) // a clean path for the checks

	// Each plan numbers the connections of one backup run from 1.
	plans := []struct {
		name string
		plan func(k int64) miniotest.Fault
	}{
		{"first two connections reset mid-upload", func(k int64) miniotest.Fault {
			if k <= 2 {
				return miniotest.Fault{ResetAfter: 256 << 10}
			}
			return miniotest.Fault{}
		}},
		{"a connection stalls mid-upload", func(k int64) miniotest.Fault {
			if k == 1 || k == 3 {
				return miniotest.Fault{StallAfter: 100 << 10}
			}
			return miniotest.Fault{}
		}},
		{"refused, then reset", func(k int64) miniotest.Fault {
			if k == 1 {
				return miniotest.Fault{Refuse: true}
			}
			if k == 2 || k == 4 {
				return miniotest.Fault{ResetAfter: 1 << 20}
			}
			return miniotest.Fault{}
		}},
	}
	var srcs []string
	for i, pl := range plans {
		src := writeTree(t, 5<<20+i, 4<<20, 2<<20, 1000+i)
		base, faulted := p.Connections(), p.Faulted()
		p.SetPlan(func(n int64) miniotest.Fault { return pl.plan(n - base) })
		r := e.run("backup", src)
		if r.code != 0 {
			// Allowed, if clear.
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\nmemento:"); lines > 0 || !strings.Contains(r.stderr, "memento: ") {
				t.Fatalf("%s: unclear failure: %s", pl.name, r.stderr)
			}
			t.Logf("%s: backup failed cleanly: %s", pl.name, r.stderr)
		} else {
			srcs = append(srcs, src)
		}
		if p.Faulted() == faulted {
			t.Fatalf("%s: no fault injected", pl.name)
		}
	}
	p.SetPlan(nil)
	if len(srcs) == 0 {
		t.Fatal("no backup survived the faults; retries do not work")
	}
	// Every listed snapshot restores (no snapshot without its data).
	for _, s := range direct.snapshots() {
		direct.mustRun("restore", s.ID, "--target", filepath.Join(t.TempDir(), "chk"))
	}
	for _, src := range srcs {
		direct.restoreLatestOf(src)
	}
	t.Logf("%d connections, %d faulted, %d of %d backups succeeded", p.Connections(), p.Faulted(), len(srcs), len(plans))
}

func closedAddr(t *testing.T) string {
	t.Helper()
	p := miniotest.NewProxy(t, "127.0.0.1:1")
	addr := p.Addr
	p.Close()
	return addr
}
