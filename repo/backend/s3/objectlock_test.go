package s3

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// newBucketName is a bucket name nobody made yet, for Create to make.
func newBucketName(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "lock-" + hex.EncodeToString(b)
}

func readAll(t *testing.T, b *Backend, name string) []byte {
	t.Helper()
	rc, err := b.Open(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// On a bucket with Object Lock, what the backend wrote cannot be deleted
// or overwritten with the same credentials (the MinIO root user here:
// retention binds every user): memento's own Delete refuses, a raw DELETE
// only adds a delete marker and a raw PUT only a newer version, and Recover
// brings the stored version back. Lock files still come and go.
func TestObjectLockCompliance(t *testing.T) {
	ctx := context.Background()
	cfg, b, s := newLockedBackend(t)
	if !b.ObjectLocked() {
		t.Fatal("Create with ObjectLockDays made a bucket without Object Lock")
	}
	mode, validity, unit, err := s.Client(t).GetBucketObjectLockConfig(ctx, cfg.Bucket)
	if err != nil || mode == nil || *mode != minio.Compliance || validity == nil || *validity != 1 || unit == nil || *unit != minio.Days {
		t.Fatalf("bucket default retention: %v %v %v %v", mode, validity, unit, err)
	}
	content := []byte("a stored snapshot manifest")
	name := "snapshots/" + hex64('a')
	lock := "locks/" + hex64('b')
	for _, n := range []string{name, lock} {
		if err := b.Write(ctx, n, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatalf("write %s: %v", n, err)
		}
	}
	until, m, err := b.Retention(ctx, name)
	if err != nil || m != "COMPLIANCE" || until.Before(time.Now().Add(23*time.Hour)) || until.After(time.Now().Add(25*time.Hour)) {
		t.Fatalf("retention of %s: %v %q %v", name, until, m, err)
	}
	// The lock goes, from the listing at least (the bucket's default
	// retention holds its version, so a delete marker hides it).
	if err := b.Delete(ctx, lock); err != nil {
		t.Fatalf("delete lock: %v", err)
	}
	if _, err := b.Stat(ctx, lock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock after delete: %v", err)
	}
	// memento's delete refuses, naming the retention.
	err = b.Delete(ctx, name)
	if !errors.Is(err, ErrRetained) || !strings.Contains(err.Error(), "(COMPLIANCE) until "+until.Format(time.RFC3339)) {
		t.Fatalf("delete of a retained file: %v", err)
	}
	// Bypassing governance does not touch compliance.
	bcfg := cfg
	bcfg.BypassGovernance = true
	bb := openTest(t, bcfg)
	if err := bb.Delete(ctx, name); !errors.Is(err, ErrRetained) {
		t.Fatalf("delete with governance bypass of a COMPLIANCE file: %v", err)
	}
	// The raw API: deleting the version is refused; a DELETE without one
	// adds a delete marker; a PUT adds a version.
	cl := s.Client(t)
	vs, err := b.versions(ctx, name)
	if err != nil || len(vs) != 1 {
		t.Fatalf("versions: %v %v", vs, err)
	}
	if err := cl.RemoveObject(ctx, cfg.Bucket, b.key(name), minio.RemoveObjectOptions{VersionID: vs[0].id, GovernanceBypass: true}); err == nil {
		t.Fatal("the retained version was deleted")
	}
	if err := cl.RemoveObject(ctx, cfg.Bucket, b.key(name), minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("delete marker: %v", err)
	}
	if _, err := b.Stat(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a delete marker: %v", err)
	}
	good := func(n string, r io.Reader) (bool, error) {
		data, err := io.ReadAll(r)
		return bytes.Equal(data, content), err
	}
	rec, lost, err := b.Recover(ctx, good)
	if err != nil || len(rec) != 1 || rec[0] != name || len(lost) != 0 {
		t.Fatalf("recover a delete marker: %v %v %v", rec, lost, err)
	}
	if got := readAll(t, b, name); !bytes.Equal(got, content) {
		t.Fatalf("after recovery: %q", got)
	}
	garbage := []byte("encrypted by ransomware")
	if _, err := cl.PutObject(ctx, cfg.Bucket, b.key(name), bytes.NewReader(garbage), int64(len(garbage)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if got := readAll(t, b, name); !bytes.Equal(got, garbage) {
		t.Fatalf("the overwrite did not show: %q", got)
	}
	rec, lost, err = b.Recover(ctx, good)
	if err != nil || len(rec) != 1 || len(lost) != 0 {
		t.Fatalf("recover an overwrite: %v %v %v", rec, lost, err)
	}
	if got := readAll(t, b, name); !bytes.Equal(got, content) {
		t.Fatalf("after recovery: %q", got)
	}
	// Nothing left to recover.
	if rec, lost, err = b.Recover(ctx, good); err != nil || len(rec)+len(lost) != 0 {
		t.Fatalf("second recovery: %v %v %v", rec, lost, err)
	}
}

// GOVERNANCE retention binds the backup host's credentials, and gives way
// to a privileged host's that bypass governance: prune's deletes then
// remove every version, freeing the space.
func TestObjectLockGovernance(t *testing.T) {
	ctx := context.Background()
	cfg, s := testConfig(t, "")
	cfg.Bucket = newBucketName(t)
	cfg.ObjectLockDays = 1
	cfg.ObjectLockMode = ObjectLockGovernance
	b, err := Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	name := "data/aa/" + hex64('a')
	content := bytes.Repeat([]byte("pack"), 1000)
	for range 2 { // two versions: an upload sent twice
		if err := b.Write(ctx, name, bytes.NewReader(content), int64(len(content))); err != nil {
			t.Fatal(err)
		}
	}
	if _, m, err := b.Retention(ctx, name); m != "GOVERNANCE" || err != nil {
		t.Fatalf("retention: %q %v", m, err)
	}
	if err := b.Delete(ctx, name); !errors.Is(err, ErrRetained) || !strings.Contains(err.Error(), "(GOVERNANCE) until") {
		t.Fatalf("delete without bypass: %v", err)
	}
	pcfg := cfg
	pcfg.BypassGovernance = true
	priv := openTest(t, pcfg)
	if until, _, err := priv.Retention(ctx, name); !until.IsZero() || err != nil {
		t.Fatalf("retention seen by the privileged host: %v %v", until, err)
	}
	if err := priv.Delete(ctx, name); err != nil {
		t.Fatalf("privileged delete: %v", err)
	}
	n := 0
	for oi := range s.Client(t).ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Prefix: b.key(name), WithVersions: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		n++
	}
	if n != 0 {
		t.Fatalf("%d versions or markers left after a privileged delete, want none", n)
	}
}

// Asking for retention on a bucket without Object Lock fails on open,
// naming the bucket; a bucket with Object Lock is noticed without the
// setting too (deletes go by version).
func TestObjectLockRefusedOnPlainBucket(t *testing.T) {
	ctx := context.Background()
	cfg, _ := testConfig(t, "")
	cfg.ObjectLockDays = 7
	_, err := Open(ctx, cfg)
	if !errors.Is(err, ErrNoObjectLock) || !strings.Contains(err.Error(), cfg.Bucket) || !strings.Contains(err.Error(), "7 days") {
		t.Fatalf("open of a plain bucket with object lock days: %v", err)
	}
	if _, err := Create(ctx, cfg); !errors.Is(err, ErrNoObjectLock) {
		t.Fatalf("create on an existing plain bucket: %v", err)
	}
	cfg.ObjectLockDays = 0
	if b := openTest(t, cfg); b.ObjectLocked() {
		t.Fatal("a plain bucket reported as locked")
	}
}
