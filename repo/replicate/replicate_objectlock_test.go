package replicate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"memento/repo"
	"memento/repo/backend/s3"
	"memento/repo/backend/s3/miniotest"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// A replica in an Object Locked bucket: the packs of its first snapshot
// are left retained for an hour only (governance, shortened with the
// bypass as an old replica's would have run out), a second snapshot that
// reuses them is replicated, and before its manifest is copied every pack
// already there is retained at least a day (the destination's period) from
// then; a raw delete of one with the backup credentials is refused, and a
// run that copies no manifest asks nothing.
func TestReplicateObjectLockExtendsReusedPacks(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	f := newReplicaFixture(t, 1)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	cfg, err := s3.ParseURL(srv.URL("lock-"+hex.EncodeToString(b), "replica"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessKey, cfg.SecretKey, cfg.Region = miniotest.AccessKey, miniotest.SecretKey, "us-east-1"
	cfg.ObjectLockDays, cfg.ObjectLockMode = 1, s3.ObjectLockGovernance
	dst, err := s3.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Replicate(ctx, f.src.Backend, dst, ReplicateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.RetentionQueried != 0 || st.RetentionExtended != 0 {
		t.Fatalf("first run into an empty replica: %+v", st)
	}
	cl := srv.Client(t)
	short := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	var old []string
	for key := range srv.Keys(t, cfg.Bucket, cfg.Prefix+"/") {
		if !strings.HasPrefix(key, repo.DirData+"/") {
			continue
		}
		old = append(old, key)
		mode := minio.Governance
		if err := cl.PutObjectRetention(ctx, cfg.Bucket, cfg.Prefix+"/"+key, minio.PutObjectRetentionOptions{
			Mode: &mode, RetainUntilDate: &short, GovernanceBypass: true}); err != nil {
			t.Fatalf("shorten %s: %v", key, err)
		}
		if u, err := dst.RetainedUntil(ctx, key); err != nil || !u.Equal(short) {
			t.Fatalf("%s retained until %s (%v), want %s", key, u, err, short)
		}
	}
	if len(old) == 0 {
		t.Fatal("the replica has no packs")
	}

	// A second snapshot: f0.bin again (its packs reused) and a new file.
	data := t.TempDir()
	repotest.WriteFile(t, filepath.Join(data, "d", "f0.bin"), repotest.RandomBytes(1, 700<<10), 0o644)
	repotest.WriteFile(t, filepath.Join(data, "d", "g.bin"), repotest.RandomBytes(99, 300<<10), 0o644)
	sn := backuptest.Backup(t, f.src.Repository, backup.BackupOptions{Paths: []string{filepath.Join(data, "d")}, Host: "h1"})
	f.trees[sn.ID.String()] = repotest.DigestTree(t, data)
	start := time.Now()
	st, err = Replicate(ctx, f.src.Backend, dst, ReplicateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.RetentionQueried != int64(len(old)) || st.RetentionExtended != int64(len(old)) {
		t.Fatalf("second run: queried %d, extended %d, want %d each (%+v)", st.RetentionQueried, st.RetentionExtended, len(old), st)
	}
	want := start.Add(24 * time.Hour).Truncate(time.Second)
	for _, key := range old {
		u, err := dst.RetainedUntil(ctx, key)
		if err != nil || u.Before(want) {
			t.Fatalf("reused pack %s retained until %s (%v), want at least %s", key, u, err, want)
		}
	}
	// The backup credentials (no bypass) cannot delete a reused pack.
	key := cfg.Prefix + "/" + old[0]
	info, err := cl.StatObject(ctx, cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveObject(ctx, cfg.Bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
		t.Fatalf("deleted the retained version of %s", old[0])
	}
	if err := dst.Delete(ctx, old[0]); err == nil || !strings.Contains(err.Error(), s3.ErrRetained.Error()) {
		t.Fatalf("backend delete of %s: %v, want %q", old[0], err, s3.ErrRetained)
	}
	f.checkReplica(t, dst, true)

	// Nothing new to copy: no manifest, no question.
	st, err = Replicate(ctx, f.src.Backend, dst, ReplicateOptions{})
	if err != nil || st.RetentionQueried != 0 || st.Files != 0 {
		t.Fatalf("idle run: %+v %v", st, err)
	}
}
