package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"memento/repo/backend/s3/miniotest"
)

// newLockedS3Env is an environment whose repository init makes in a new
// bucket with S3 Object Lock (retention of one day in mode).
func newLockedS3Env(t *testing.T, srv *miniotest.Server, mode string) (*env, string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	bucket := "lock-" + hex.EncodeToString(b)
	e := &env{t: t, repo: srv.URL(bucket, "engram"), cache: filepath.Join(t.TempDir(), "cache"), password: "correct horse",
		extra: append(srv.Env(), "MEMENTO_S3_TIMEOUT=5s", "MEMENTO_S3_OBJECT_LOCK_DAYS=1", "MEMENTO_S3_OBJECT_LOCK_MODE="+mode)}
	e.mustRun("init")
	return e, bucket
}

// Scenario 5 on S3: the attacker holds the backup host's credentials. It
// cannot make memento delete anything (forget refuses, naming the
// retention), and what it does with the raw API — delete every object,
// overwrite a manifest — only adds delete markers and versions:
// recover-versions brings the repository back and the last snapshot
// restores byte for byte.
func TestS3ObjectLockRansomware(t *testing.T) {
	srv := miniotest.Start(t)
	e, bucket := newLockedS3Env(t, srv, "compliance")
	src := writeTree(t, 300<<10, 2000, 40<<10)
	e.mustRun("backup", src)
	if err := os.WriteFile(filepath.Join(src, "sub0", "file00.bin"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	r := e.wantFail(exitLocked, "is under retention (S3 Object Lock, COMPLIANCE) until ", "forget", "--all", "--keep-last", "1")
	if !strings.Contains(r.stderr, "no credentials can delete it before then: run forget after the retention expires; nothing was deleted") {
		t.Fatalf("forget's refusal does not say what to do: %s", r.stderr)
	}
	if n := len(e.snapshots()); n != 2 {
		t.Fatalf("%d snapshots after a refused forget, want 2", n)
	}

	// The attacker, with the same credentials and the raw API.
	ctx := context.Background()
	cl := srv.Client(t)
	var keys []string
	for oi := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "engram/", Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		keys = append(keys, oi.Key)
	}
	var manifest string
	for _, k := range keys {
		if strings.HasPrefix(k, "engram/snapshots/") {
			manifest = k
		}
		if err := cl.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{}); err != nil {
			t.Fatalf("delete %s: %v", k, err)
		}
	}
	garbage := bytes.Repeat([]byte{0x5a}, 4096)
	if _, err := cl.PutObject(ctx, bucket, manifest, bytes.NewReader(garbage), int64(len(garbage)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("overwrite %s: %v", manifest, err)
	}
	e.wantFail(exitNoRepository, "no repository", "snapshots")

	out := e.mustRun("recover-versions")
	if !strings.Contains(out, "recovered config\n") || !strings.Contains(out, "recovered "+strings.TrimPrefix(manifest, "engram/")+"\n") ||
		!strings.Contains(out, " recovered, 0 without a good version") {
		t.Fatalf("recover-versions:\n%s", out)
	}
	if n := len(e.snapshots()); n != 2 {
		t.Fatalf("%d snapshots after recovery, want 2", n)
	}
	e.restoreLatest(src)
	e.mustRun("check", "--read-data")
}

// GOVERNANCE: the backup host's forget and prune refuse and send the
// operator to the privileged host, whose credentials bypass governance;
// there they delete for real (every version).
func TestS3ObjectLockGovernancePrivilegedHost(t *testing.T) {
	srv := miniotest.Start(t)
	e, _ := newLockedS3Env(t, srv, "governance")
	src := writeTree(t, 200<<10, 3000)
	e.mustRun("backup", src)
	if err := os.WriteFile(filepath.Join(src, "sub0", "file00.bin"), bytes.Repeat([]byte("x"), 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	e.wantFail(exitLocked, "(S3 Object Lock, GOVERNANCE) until ", "forget", "--all", "--keep-last", "1")
	r := e.wantFail(exitLocked, "run forget from the privileged host (--s3-bypass-governance", "forget", "--all", "--keep-last", "1")
	_ = r
	priv := *e
	priv.extra = append(append([]string{}, e.extra...), "MEMENTO_S3_BYPASS_GOVERNANCE=1")
	priv.mustRun("forget", "--all", "--keep-last", "1")
	if n := len(e.snapshots()); n != 1 {
		t.Fatalf("%d snapshots after the privileged forget, want 1", n)
	}
	// The backup host's prune would delete the forgotten snapshot's pack.
	e.wantFail(exitLocked, "prune: data/", "prune", "--max-unused", "0")
	priv.mustRun("prune", "--max-unused", "0")
	e.restoreLatest(src)
	e.mustRun("check", "--read-data")
}

// A replica in a bucket with Object Lock keeps what the source pruned until
// the retention expires: replicate does not fail on it, and the replica's
// snapshots and the packs they use stay complete.
func TestS3ObjectLockReplica(t *testing.T) {
	srv := miniotest.Start(t)
	e := newEnv(t)
	e.extra = append(srv.Env(), "MEMENTO_S3_TIMEOUT=5s")
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	replica := e.with(srv.URL("lock-"+hex.EncodeToString(b), "engram")) // replicate makes the bucket, with Object Lock
	src := writeTree(t, 200<<10, 3000)
	e.mustRun("backup", src)
	if err := os.WriteFile(filepath.Join(src, "sub0", "file00.bin"), bytes.Repeat([]byte("y"), 90<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	e.mustRun("replicate", "--to", replica.repo, "--s3-object-lock-days", "1")
	e.mustRun("forget", "--all", "--keep-last", "1")
	e.mustRun("prune", "--max-unused", "0")
	var sum struct {
		Destinations []struct {
			Deleted  int64 `json:"deleted"`
			Retained int64 `json:"retained"`
		} `json:"destinations"`
	}
	out := e.mustRun("replicate", "--to", replica.repo, "--delete", "--s3-object-lock-days", "1", "--json")
	if err := json.Unmarshal([]byte(out), &sum); err != nil || len(sum.Destinations) != 1 || sum.Destinations[0].Retained == 0 || sum.Destinations[0].Deleted != 0 {
		t.Fatalf("replicate after a prune at the source: %v\n%s", err, out)
	}
	if n := len(replica.snapshots()); n != 2 {
		t.Fatalf("the replica has %d snapshots, want both (retained)", n)
	}
	replica.mustRun("check", "--read-data")
	replica.restoreLatest(src)
}
