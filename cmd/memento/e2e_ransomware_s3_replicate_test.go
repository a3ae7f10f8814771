package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"memento/repo/backend/s3/miniotest"
)

// replicate into an Object Locked bucket: the replica's packs of the first
// snapshot are left retained for an hour (governance, shortened with the
// bypass as time would have), a second snapshot that reuses them is
// replicated, and before its manifest is copied they are retained at least
// a day (the replica's period) from then; the backup credentials cannot
// delete one, and the replica restores.
func TestS3ObjectLockReplicaExtendsReusedPacks(t *testing.T) {
	srv := miniotest.Start(t)
	e := newEnv(t)
	src := writeTree(t, 300<<10, 200, 40<<10)
	e.mustRun("backup", src)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	bucket := "lock-" + hex.EncodeToString(b)
	to := srv.URL(bucket, "engram")
	rep := *e
	rep.extra = append(srv.Env(), "MEMENTO_S3_TIMEOUT=5s", "MEMENTO_S3_OBJECT_LOCK_DAYS=1", "MEMENTO_S3_OBJECT_LOCK_MODE=governance")
	rep.mustRun("replicate", "--to", to)

	ctx := context.Background()
	cl := srv.Client(t)
	short := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	mode := minio.Governance
	old := packRetention(t, cl, bucket)
	for key := range old {
		if err := cl.PutObjectRetention(ctx, bucket, key, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &short, GovernanceBypass: true}); err != nil {
			t.Fatalf("shorten %s: %v", key, err)
		}
	}
	if len(old) == 0 {
		t.Fatal("the replica has no packs")
	}

	if err := os.WriteFile(filepath.Join(src, "sub0", "file00.bin"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	start := time.Now()
	var out replicateJSON
	if err := json.Unmarshal([]byte(rep.mustRun("replicate", "--to", to, "--json")), &out); err != nil || len(out.Destinations) != 1 {
		t.Fatalf("replicate --json: %v %+v", err, out)
	}
	if d := out.Destinations[0]; d.RetentionQueried != int64(len(old)) || d.RetentionExtended != int64(len(old)) {
		t.Fatalf("replicate asked about %d packs and extended %d, want %d each", d.RetentionQueried, d.RetentionExtended, len(old))
	}
	want := start.Add(24 * time.Hour).Truncate(time.Second)
	now := packRetention(t, cl, bucket)
	var some string
	for key := range old {
		if u := now[key]; u.Before(want) {
			t.Fatalf("reused pack %s retained until %s, want at least %s", key, u, want)
		}
		some = key
	}
	info, err := cl.StatObject(ctx, bucket, some, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveObject(ctx, bucket, some, minio.RemoveObjectOptions{VersionID: info.VersionID}); err == nil || !strings.Contains(err.Error(), "retention") && !strings.Contains(err.Error(), "WORM") {
		t.Fatalf("raw delete of the retained version of %s: %v", some, err)
	}
	replica := rep
	replica.repo = to
	replica.cache = filepath.Join(t.TempDir(), "cache")
	replica.mustRun("check", "--read-data")
	if n := len(replica.snapshots()); n != 2 {
		t.Fatalf("the replica has %d snapshots, want 2", n)
	}
}
