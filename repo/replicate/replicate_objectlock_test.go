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
	"memento/repo/walarchive"
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
	cfg, dst := newLockedS3(t, srv, "replica")
	st, err := Replicate(ctx, f.src.Backend, dst, ReplicateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.RetentionQueried != 0 || st.RetentionExtended != 0 {
		t.Fatalf("first run into an empty replica: %+v", st)
	}
	short := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	old := shortenPacks(t, srv, cfg, dst, short)

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
	refuseDelete(t, srv, cfg, dst, old[0])
	f.checkReplica(t, dst, true)

	// Nothing new to copy: no manifest, no question.
	st, err = Replicate(ctx, f.src.Backend, dst, ReplicateOptions{})
	if err != nil || st.RetentionQueried != 0 || st.Files != 0 {
		t.Fatalf("idle run: %+v %v", st, err)
	}
}

// newLockedS3 creates a bucket with Object Lock and a backend writing every
// file under a GOVERNANCE retention of one day (so that a test can shorten
// it with the bypass, as time would have).
func newLockedS3(t *testing.T, srv *miniotest.Server, prefix string) (s3.Config, *s3.Backend) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	cfg, err := s3.ParseURL(srv.URL("lock-"+hex.EncodeToString(b), prefix))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessKey, cfg.SecretKey, cfg.Region = miniotest.AccessKey, miniotest.SecretKey, "us-east-1"
	cfg.ObjectLockDays, cfg.ObjectLockMode = 1, s3.ObjectLockGovernance
	be, err := s3.Create(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, be
}

// shortenPacks sets the retention of every pack of the bucket to until
// (with the governance bypass) and returns their names.
func shortenPacks(t *testing.T, srv *miniotest.Server, cfg s3.Config, be *s3.Backend, until time.Time) []string {
	t.Helper()
	ctx := context.Background()
	cl := srv.Client(t)
	var names []string
	for key := range srv.Keys(t, cfg.Bucket, cfg.Prefix+"/") {
		if !strings.HasPrefix(key, repo.DirData+"/") {
			continue
		}
		names = append(names, key)
		mode := minio.Governance
		if err := cl.PutObjectRetention(ctx, cfg.Bucket, cfg.Prefix+"/"+key, minio.PutObjectRetentionOptions{
			Mode: &mode, RetainUntilDate: &until, GovernanceBypass: true}); err != nil {
			t.Fatalf("shorten %s: %v", key, err)
		}
		if u, err := be.RetainedUntil(ctx, key); err != nil || !u.Equal(until) {
			t.Fatalf("%s retained until %s (%v), want %s", key, u, err, until)
		}
	}
	if len(names) == 0 {
		t.Fatal("the bucket has no packs")
	}
	return names
}

// refuseDelete checks that the backup credentials (no bypass) can delete
// neither the retained version of name nor, through the backend, the file.
func refuseDelete(t *testing.T, srv *miniotest.Server, cfg s3.Config, be *s3.Backend, name string) {
	t.Helper()
	ctx := context.Background()
	cl := srv.Client(t)
	key := cfg.Prefix + "/" + name
	info, err := cl.StatObject(ctx, cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveObject(ctx, cfg.Bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
		t.Fatalf("deleted the retained version of %s", name)
	}
	if err := be.Delete(ctx, name); err == nil || !strings.Contains(err.Error(), s3.ErrRetained.Error()) {
		t.Fatalf("backend delete of %s: %v, want %q", name, err, s3.ErrRetained)
	}
}

// Archived WAL under Object Lock: a second run, on another host (whose
// local cache knows nothing of the packs' retention), archives the grown
// segment; its record names the chunks the first run stored, in packs left
// retained for an hour, and before the record is written those packs are
// retained at least a day (the period) from then.
func TestObjectLockWALRecordsExtendPacks(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	cfg, be := newLockedS3(t, srv, "wal")
	if _, err := repo.Init(ctx, be, repo.InitOptions{Password: repotest.Password, KDF: repotest.FastKDF}); err != nil {
		t.Fatal(err)
	}
	open := func() *repo.Repository {
		r, err := repo.Open(ctx, be, repo.Options{Password: repotest.Password, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	fx := repotest.NewWALFixture(t, 64<<20)
	fx.Write(t, 3<<20)
	archive := func(r *repo.Repository) *walarchive.WALArchiveResult {
		ar := walarchive.NewWALArchiver(r, nil)
		defer ar.Close()
		res, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	archive(open())
	old := shortenPacks(t, srv, cfg, be, time.Now().Add(time.Hour).UTC().Truncate(time.Second))

	fx.Write(t, 1<<20)
	start := time.Now()
	if res := archive(open()); res.Segments == 0 {
		t.Fatalf("second run archived nothing: %+v", res)
	}
	want := start.Add(24 * time.Hour).Truncate(time.Second)
	for _, name := range old {
		if u, err := be.RetainedUntil(ctx, name); err != nil || u.Before(want) {
			t.Fatalf("pack %s of the first run retained until %s (%v), want at least %s", name, u, err, want)
		}
	}
	refuseDelete(t, srv, cfg, be, old[0])
}
