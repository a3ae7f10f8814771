package drill

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
)

// lockedBucket is a new bucket name for a replica that `replicate` makes
// with S3 Object Lock (MEMENTO_S3_OBJECT_LOCK_DAYS in the environment).
func lockedBucket() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "lock-" + hex.EncodeToString(b)
}

// storedVersions is every stored version (not delete markers) below
// prefix: "key@version" -> ETag.
func (d *drill) storedVersions(bucket, prefix string) map[string]string {
	d.t.Helper()
	out := map[string]string{}
	for oi := range d.srv.Client(d.t).ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if oi.Err != nil {
			d.t.Fatalf("list versions of %s/%s: %v", bucket, prefix, oi.Err)
		}
		if !oi.IsDeleteMarker {
			out[oi.Key+"@"+oi.VersionID] = oi.ETag
		}
	}
	return out
}

// attackReplica is the attacker of scenario 5 on the replica, a bucket
// with S3 Object Lock, with the backup host's credentials (the repository
// password and the S3 keys): memento's own forget and prune, then the raw
// S3 API. memento refuses (exit 6, "under retention") and deletes nothing;
// deleting a stored version is refused by the storage; what the keys can
// do (delete markers, a newer version over a file) hides files but keeps
// every stored version. It returns a summary for the report.
func (d *drill) attackReplica(bucket, prefix string) string {
	d.t.Helper()
	replica := d.vars["REPLICA"]
	before := d.storedVersions(bucket, prefix)
	if len(before) == 0 {
		d.t.Fatalf("the replica bucket %s holds nothing", bucket)
	}
	for _, args := range [][]string{
		{"forget", "--all", "--keep-last", "1", "--prune"},
		{"forget", "--all", "--keep-last", "1", "--allow-empty", "--forget-damaged"},
	} {
		out, errs, code := d.run("memento", append([]string{"-r", replica}, args...)...)
		if code != 6 || !strings.Contains(errs, "is under retention (S3 Object Lock, COMPLIANCE) until ") || !strings.Contains(errs, "nothing was deleted") {
			d.t.Fatalf("the attacker's memento %s on the locked replica: exit %d, want 6 naming the retention\n%s%s", strings.Join(args, " "), code, out, errs)
		}
	}
	// prune: nothing is unused after the refused forgets; whatever it
	// plans, it must delete no stored version (checked below) and exit 0
	// (nothing to delete) or 6 (refused).
	out, errs, pruneCode := d.run("memento", "-r", replica, "prune", "--max-unused", "0")
	if pruneCode != 0 && pruneCode != 6 {
		d.t.Fatalf("the attacker's prune on the locked replica: exit %d\n%s%s", pruneCode, out, errs)
	}

	ctx := context.Background()
	cl := d.srv.Client(d.t)
	keys := map[string]bool{}
	var refused int
	codes := map[string]int{}
	for kv := range before {
		key, ver, _ := strings.Cut(kv, "@")
		keys[key] = true
		err := cl.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{VersionID: ver})
		if err == nil {
			d.t.Fatalf("the attacker deleted version %s of %s from the locked replica", ver, key)
		}
		refused++
		codes[minio.ToErrorResponse(err).Code]++
	}
	// What the keys can do: a newer version over every snapshot manifest
	// and the config, then a delete marker over every file.
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	garbage := bytes.Repeat([]byte{0x5a}, 4096)
	var overwritten int
	for _, k := range sorted {
		rel := strings.TrimPrefix(k, prefix)
		if rel == "config" || strings.HasPrefix(rel, "snapshots/") {
			if _, err := cl.PutObject(ctx, bucket, k, bytes.NewReader(garbage), int64(len(garbage)), minio.PutObjectOptions{}); err != nil {
				d.t.Fatalf("the attacker's overwrite of %s: %v", k, err)
			}
			overwritten++
		}
	}
	for _, k := range sorted {
		if err := cl.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{}); err != nil {
			d.t.Fatalf("the attacker's delete (marker) of %s: %v", k, err)
		}
	}
	if _, errs, code := d.run("memento", "-r", replica, "snapshots"); code != 3 {
		d.t.Fatalf("after the attack the replica answers exit %d, want 3 (no repository: every file hidden)\n%s", code, errs)
	}
	d.checkVersionsKept(bucket, prefix, before)
	return fmt.Sprintf("on the Object Lock replica the attacker's forget exits 6, prune exit %d (deleting nothing), %d version deletes are refused (%v); recover-versions undoes %d overwrites and %d delete markers",
		pruneCode, refused, codes, overwritten, len(sorted))
}

// checkVersionsKept fails unless every version of before is still stored
// with the same content.
func (d *drill) checkVersionsKept(bucket, prefix string, before map[string]string) {
	d.t.Helper()
	after := d.storedVersions(bucket, prefix)
	for kv, etag := range before {
		if got, ok := after[kv]; !ok || got != etag {
			d.t.Fatalf("stored version %s is gone or changed (ETag %q, was %q)", kv, got, etag)
		}
	}
}
