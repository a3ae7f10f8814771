package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"memento/repo/backend/s3/miniotest"
)

// runPartitioned runs memento and, once the proxy forwarded `after` more
// client->server bytes (progress of the upload, not time), partitions the
// network; it heals the network when the command has ended.
func runPartitioned(e *env, p *miniotest.Proxy, after int64, args ...string) result {
	e.t.Helper()
	r, _ := runPartitionedTimed(e, p, after, args...)
	return r
}

// runPartitionedTimed is runPartitioned that also returns how long the
// command ran on after the partition began.
func runPartitionedTimed(e *env, p *miniotest.Proxy, after int64, args ...string) (result, time.Duration) {
	e.t.Helper()
	base := p.Sent()
	done := make(chan result, 1)
	go func() { done <- e.run(args...) }()
	var r result
	var cut time.Time
wait:
	for {
		select {
		case r = <-done:
			break wait
		case <-time.After(5 * time.Millisecond):
			if cut.IsZero() && p.Sent()-base >= after {
				p.Partition()
				cut = time.Now()
			}
		}
	}
	took := time.Since(cut)
	p.Heal()
	if cut.IsZero() {
		e.t.Fatalf("memento %s ended before %d bytes went through the proxy: no partition happened", strings.Join(args, " "), after)
	}
	return r, took
}

// TestChaosNetwork: S3 backups and replication to MinIO over a slow link
// (bandwidth limit and latency: they complete) and through a network
// partition in the middle of the upload (every connection black-holed: the
// command fails within its retry budget with one line naming the timeout,
// exit 1, and nothing half-written is referenced). After the network heals,
// the next run completes; `check --read-data` of the primary and the replica
// is clean and what was backed up restores byte for byte from both.
func TestChaosNetwork(t *testing.T) {
	chaosEnvFull(t)
	srv := miniotest.Start(t)
	p := miniotest.NewProxy(t, srv.Endpoint)
	bucket := srv.MakeBucket(t)
	// The slow links and the healed network get a generous budget (the
	// machine may be loaded); a partitioned run a tight one, so that it
	// gives up soon.
	e := &env{t: t, repo: miniotest.URL(p.Addr, bucket, "primary"), cache: filepath.Join(t.TempDir(), "cache"),
		password: "correct horse", extra: append(srv.Env(), "MEMENTO_S3_TIMEOUT=60s")}
	tight := func(e *env) *env {
		c := *e
		c.extra = append(srv.Env(), "MEMENTO_S3_TIMEOUT=2s", "MEMENTO_S3_RETRIES=1")
		return &c
	}
	e.mustRun("init")
	direct := e.with(srv.URL(bucket, "primary")) // a clean path for the checks
	var report strings.Builder
	report.WriteString("| case | command | outcome |\n|---|---|---|\n")
	slow := func(int64) miniotest.Fault {
		return miniotest.Fault{BytesPerSecond: 4 << 20, Latency: 2 * time.Millisecond}
	}

	// S3 backup over a slow link: completes.
	src1 := writeTree(t, 3<<20, 2<<20, 1<<20, 4000)
	p.SetPlan(slow)
	start := time.Now()
	e.mustRun("backup", src1)
	fmt.Fprintf(&report, "| slow link (4 MiB/s, 2 ms per chunk) | S3 backup of 6 MiB | completed in %.1fs |\n", time.Since(start).Seconds())
	p.SetPlan(nil)
	before := direct.snapshots()

	// S3 backup partitioned mid-upload: a clear failure, nothing listed.
	src2 := writeTree(t, 6<<20, 5<<20, 3000)
	r := runPartitioned(tight(e), p, 2<<20, "backup", src2)
	e.wantFailAgain(r, exitFailure, "memento: ", "backup", src2)
	t.Logf("partitioned S3 backup: %s", strings.TrimSpace(r.stderr))
	fmt.Fprintf(&report, "| partition after 2 MiB uploaded | S3 backup | exit %d: `%s` |\n", r.code, lastLine(r.stderr))
	if got := direct.snapshots(); len(got) != len(before) {
		t.Errorf("a partitioned backup left a snapshot: %v, before %v", got, before)
	}
	direct.mustRun("check", "--read-data")
	// Healed: the next run completes.
	e.mustRun("backup", src2)
	direct.mustRun("check", "--read-data")
	direct.restoreLatestOf(src1)
	direct.restoreLatestOf(src2)

	// Replication from a local primary to MinIO.
	local := &env{t: t, repo: filepath.Join(t.TempDir(), "local"), cache: filepath.Join(t.TempDir(), "lcache"),
		password: e.password, extra: e.extra}
	local.mustRun("init")
	local.mustRun("backup", src1)
	replicaURL := miniotest.URL(p.Addr, bucket, "replica")
	p.SetPlan(slow)
	start = time.Now()
	local.mustRun("replicate", "--to", replicaURL)
	fmt.Fprintf(&report, "| slow link | replicate to MinIO | completed in %.1fs |\n", time.Since(start).Seconds())
	p.SetPlan(nil)
	local.mustRun("backup", src2)
	r = runPartitioned(tight(local), p, 2<<20, "replicate", "--to", replicaURL)
	local.wantFailAgain(r, exitFailure, "memento: ", "replicate", "--to", replicaURL)
	t.Logf("partitioned replicate: %s", strings.TrimSpace(r.stderr))
	fmt.Fprintf(&report, "| partition after 2 MiB sent | replicate to MinIO | exit %d: `%s` |\n", r.code, lastLine(r.stderr))
	// The replica is a valid repository at every moment.
	replica := e.with(srv.URL(bucket, "replica"))
	replica.mustRun("check", "--read-data")
	local.mustRun("replicate", "--to", replicaURL)
	replica.mustRun("check", "--read-data")
	if got, want := len(replica.snapshots()), len(local.snapshots()); got != want {
		t.Errorf("replica: %d snapshots, primary %d", got, want)
	}
	replica.restoreLatestOf(src1)
	replica.restoreLatestOf(src2)
	t.Logf("%d connections through the proxy, %d faulted", p.Connections(), p.Faulted())
	appendChaosEnvReport(t, "## Chaos: network (MinIO behind the fault proxy)\n\n`make chaos-env` (TestChaosNetwork; "+
		"partitioned runs with MEMENTO_S3_TIMEOUT=2s, MEMENTO_S3_RETRIES=1; the others MEMENTO_S3_TIMEOUT=60s). After every failure the next run completed, "+
		"`check --read-data` of the primary and of the replica was clean and both restored byte for byte.\n\n"+report.String())
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
