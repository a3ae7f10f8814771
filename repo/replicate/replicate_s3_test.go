package replicate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"memento/repo"
	"memento/repo/backend/s3"
	"memento/repo/backend/s3/miniotest"
	"memento/repo/backup"
	"memento/repo/repotest"
)

// Local -> MinIO -> local: both replicas restore every snapshot.
func TestReplicateS3(t *testing.T) {
	srv := miniotest.Start(t)
	f := newReplicaFixture(t, 2)
	ctx := context.Background()
	cfg, err := s3.ParseURL(srv.URL(srv.MakeBucket(t), "replica"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessKey, cfg.SecretKey, cfg.Region = miniotest.AccessKey, miniotest.SecretKey, "us-east-1"
	cfg.SinglePutLimit, cfg.PartSize = 5<<20, 5<<20 // exercise multipart with the fixture's larger files
	remote, err := s3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Replicate(ctx, f.src.Backend, remote, ReplicateOptions{Verify: true, Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files == 0 || st.Verified != st.Files {
		t.Fatalf("stats %+v", st)
	}
	f.checkReplica(t, remote, true)
	back := repotest.NewLocal(t, filepath.Join(t.TempDir(), "back"))
	if _, err := Replicate(ctx, remote, back, ReplicateOptions{Verify: true}); err != nil {
		t.Fatal(err)
	}
	f.checkReplica(t, back, true)
	if a, b := replicaFiles(t, f.src.Backend), replicaFiles(t, back); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("the round trip through S3 changed the file set")
	}
}

// Replication while backups keep writing to the source: every replica
// state is a valid repository (the listing order guarantees it).
func TestReplicateDuringBackups(t *testing.T) {
	f := newReplicaFixture(t, 1)
	dst := repotest.NewLocal(t, filepath.Join(t.TempDir(), "replica"))
	data := t.TempDir()
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 6 {
			repotest.WriteFile(t, filepath.Join(data, "d", fmt.Sprintf("g%d.bin", i)), repotest.RandomBytes(uint64(100+i), 300<<10), 0o644)
			// Held across the backup, so that a snapshot the replica may
			// already hold is known before the replica is checked.
			mu.Lock()
			sn, err := backup.Backup(context.Background(), f.src.Repository, backup.BackupOptions{Paths: []string{filepath.Join(data, "d")}})
			if err != nil {
				mu.Unlock()
				t.Error(err)
				return
			}
			f.trees[sn.ID.String()] = repotest.DigestTree(t, data)
			mu.Unlock()
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := Replicate(context.Background(), f.src.Backend, dst, ReplicateOptions{Parallel: 2}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		f.checkReplica(t, dst, !running)
		mu.Unlock()
	}
}

// lock.go on an object store, unchanged: locks are plain files written then
// listed, so shared locks of several processes coexist in one bucket and an
// exclusive one sees them (and the reverse). Lives here because the S3
// tests of repo/ share this file's MinIO setup.
func TestLocksOnS3(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	cfg, err := s3.ParseURL(srv.URL(srv.MakeBucket(t), "locks"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessKey, cfg.SecretKey, cfg.Region = miniotest.AccessKey, miniotest.SecretKey, "us-east-1"
	be, err := s3.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, be, repo.InitOptions{Password: repotest.Password, KDF: repotest.FastKDF}); err != nil {
		t.Fatal(err)
	}
	open := func() *repo.Repository {
		r, err := repo.Open(ctx, be, repo.Options{Password: repotest.Password, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := open(), open()
	la, err := a.Lock(ctx, false, "backup")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Lock(ctx, false, "backup")
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	if _, err := b.Lock(ctx, true, "prune"); !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "shared lock held by") {
		t.Fatalf("exclusive lock while shared ones are held: %v", err)
	}
	if err := la.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := lb.Unlock(); err != nil {
		t.Fatal(err)
	}
	lx, err := a.Lock(ctx, true, "prune")
	if err != nil {
		t.Fatalf("exclusive lock on an idle repository: %v", err)
	}
	if _, err := b.Lock(ctx, false, "backup"); !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "exclusive lock held by") {
		t.Fatalf("shared lock while an exclusive one is held: %v", err)
	}
	if err := lx.Unlock(); err != nil {
		t.Fatal(err)
	}
	locks, err := b.Locks(ctx)
	if err != nil || len(locks) != 0 {
		t.Fatalf("locks left: %v %v", locks, err)
	}
}
