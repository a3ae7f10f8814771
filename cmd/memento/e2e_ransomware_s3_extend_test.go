package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"memento/repo/backend/s3/miniotest"
)

// packRetention is every pack's retain-until date in a locked bucket.
func packRetention(t *testing.T, cl *minio.Client, bucket string) map[string]time.Time {
	t.Helper()
	ctx := context.Background()
	out := map[string]time.Time{}
	for oi := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "engram/data/", Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		_, u, err := cl.GetObjectRetention(ctx, bucket, oi.Key, "")
		if err != nil || u == nil {
			t.Fatalf("retention of %s: %v", oi.Key, err)
		}
		out[oi.Key] = *u
	}
	return out
}

var retentionLog = regexp.MustCompile(`retention of the snapshot's packs.*packs=(\d+) queried=(\d+) extended=(\d+) seconds=\S+`)

// retentionFigures reads the packs, queried and extended figures of a
// backup's retention log line (--verbose).
func retentionFigures(t *testing.T, stderr string) (packs, queried, extended int) {
	t.Helper()
	m := retentionLog.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no retention line in the backup's log:\n%s", stderr)
	}
	t.Logf("%s", m[0][strings.Index(m[0], "retention of"):])
	packs, _ = strconv.Atoi(m[1])
	queried, _ = strconv.Atoi(m[2])
	extended, _ = strconv.Atoi(m[3])
	return packs, queried, extended
}

// A snapshot's data is retained as long as the snapshot: a backup that
// reuses packs an earlier backup wrote lengthens their Object Lock
// retention to (at least) its manifest's before writing it, asking the
// storage only about packs the local cache does not know to be retained
// long enough; the backup host's credentials cannot delete them.
func TestS3ObjectLockExtendsReusedPacks(t *testing.T) {
	srv := miniotest.Start(t)
	e, bucket := newLockedS3Env(t, srv, "compliance")
	cl := srv.Client(t)
	src := writeTree(t, 300<<10, 2000, 40<<10)
	r := e.run("backup", "--verbose", src)
	if r.code != 0 {
		t.Fatalf("backup: exit %d\n%s", r.code, r.stderr)
	}
	packs, queried, extended := retentionFigures(t, r.stderr)
	if packs == 0 || queried != 0 || extended != 0 {
		t.Fatalf("first backup: %d packs, %d queried, %d extended; want its new packs known (cached) and none extended", packs, queried, extended)
	}
	first := packRetention(t, cl, bucket)

	if err := os.WriteFile(filepath.Join(src, "sub0", "file00.bin"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The operator lengthens the retention to two days: the next snapshot
	// needs the packs it reuses retained two days from now, longer than
	// the day and a tenth they were written with.
	long := *e
	long.extra = append(append([]string{}, e.extra...), "MEMENTO_S3_OBJECT_LOCK_DAYS=2")
	before := time.Now()
	r = long.run("backup", "--verbose", src)
	if r.code != 0 {
		t.Fatalf("second backup: exit %d\n%s", r.code, r.stderr)
	}
	packs2, queried2, extended2 := retentionFigures(t, r.stderr)
	t.Logf("second backup: %d packs, %d queried, %d extended", packs2, queried2, extended2)
	if extended2 < len(first) || queried2 < extended2 {
		t.Fatalf("second backup: %d queried, %d extended; want the %d reused packs extended", queried2, extended2, len(first))
	}
	second := packRetention(t, cl, bucket)
	need := before.Add(48 * time.Hour)
	for k, u := range first {
		if !second[k].After(u) || second[k].Before(need) {
			t.Errorf("pack %s retained until %s, was %s: want moved forward past %s", k, second[k], u, need)
		}
	}
	// The attacker's credentials cannot delete a reused pack.
	for k := range first {
		if err := cl.RemoveObject(context.Background(), bucket, k, minio.RemoveObjectOptions{VersionID: versionOf(t, cl, bucket, k)}); err == nil {
			t.Fatalf("deleted %s under retention", k)
		}
		break
	}

	// A third backup right after: every pack is known to be retained long
	// enough, nothing is asked.
	r = long.run("backup", "--verbose", src)
	if r.code != 0 {
		t.Fatalf("third backup: exit %d\n%s", r.code, r.stderr)
	}
	if _, q, x := retentionFigures(t, r.stderr); q != 0 || x != 0 {
		t.Fatalf("third backup: %d queried, %d extended; want 0 and 0 (cached)", q, x)
	}
	// With an empty cache every pack it did not write is asked about once,
	// none extended.
	fresh := long
	fresh.cache = filepath.Join(t.TempDir(), "cache")
	r = fresh.run("backup", "--verbose", src)
	if r.code != 0 {
		t.Fatalf("backup with an empty cache: exit %d\n%s", r.code, r.stderr)
	}
	if p, q, x := retentionFigures(t, r.stderr); q < len(first) || q > p || x != 0 {
		t.Fatalf("backup with an empty cache: %d packs, %d queried, %d extended; want the old ones queried, none extended", p, q, x)
	}
	e.restoreLatest(src)
	if strings.Contains(r.stderr, "level=ERROR") {
		t.Fatal(r.stderr)
	}
}

func versionOf(t *testing.T, cl *minio.Client, bucket, key string) string {
	t.Helper()
	st, err := cl.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return st.VersionID
}
