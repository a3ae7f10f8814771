package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// S3 Object Lock makes the repository resistant to ransomware that holds
// the backup host's credentials (docs/operations/ransomware.md): every file
// is written with a retention period, and until it expires no credentials
// can delete or overwrite the stored version (COMPLIANCE), or only
// credentials allowed to bypass governance can (GOVERNANCE). Object Lock
// works on versions: a DELETE without a version adds a delete marker, a PUT
// of an existing key adds a new version, and the retained version stays
// readable by its version ID, so whatever the backup host's credentials do,
// what was stored can be recovered (RecoverVersions).
//
// On a bucket with Object Lock enabled the backend therefore deletes by
// version: Delete removes every version of a file, and refuses (ErrRetained)
// when one of them is still retained, rather than hiding it behind a delete
// marker that frees nothing. Lock files are the exception: they are written
// without a retention, and deleted however the bucket allows (by version, or
// behind a delete marker when a default retention holds them too), since a
// lock must disappear from listings when released.

// MaxObjectLockDays bounds Config.ObjectLockDays (100 years, S3's limit is
// higher; a typo of 36500 rather than 365 is still caught by review).
const MaxObjectLockDays = 36500

// ErrRetained is wrapped by a Delete refused because a version of the file
// is under an Object Lock retention.
var ErrRetained = errors.New("under S3 Object Lock retention")

// ErrNoObjectLock is returned by Open and Create when Config.ObjectLockDays
// asks for retention on a bucket without Object Lock.
var ErrNoObjectLock = errors.New("bucket has no Object Lock configuration")

// lockDir is the directory of lock files (repo.DirLocks), which are written
// without retention: they are deleted when released.
const lockDir = "locks/"

func isLockFile(name string) bool { return strings.HasPrefix(name, lockDir) }

// ObjectLocked reports whether the bucket has Object Lock enabled (as
// Open found it).
func (b *Backend) ObjectLocked() bool { return b.locked }

// checkObjectLock learns whether the bucket has Object Lock enabled, and
// refuses a bucket without it when retention is asked for.
func (b *Backend) checkObjectLock(ctx context.Context) error {
	var enabled string
	err := b.retry(ctx, "get object lock configuration", "", func() (err error) {
		enabled, _, _, _, err = b.cl.GetObjectLockConfig(ctx, b.cfg.Bucket)
		return err
	})
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
		b.locked = enabled == "Enabled"
	case code == "ObjectLockConfigurationNotFoundError" || code == "NotImplemented":
		b.locked = false
	case b.cfg.ObjectLockDays > 0:
		return b.wrapErr("get object lock configuration", "", err)
	default:
		// Credentials that may not read the bucket's configuration: treat
		// it as unlocked, as every backend did before Object Lock.
		b.locked = false
	}
	if b.cfg.ObjectLockDays > 0 && !b.locked {
		return fmt.Errorf("s3 backend: bucket %q at %s: %w, but %d days of retention were asked for (Object Lock is enabled when a bucket is made: let 'memento init' make a new bucket, or enable it on a versioned bucket with 'mc retention set --default' or 'aws s3api put-object-lock-configuration')",
			b.cfg.Bucket, b.cfg.Endpoint, ErrNoObjectLock, b.cfg.ObjectLockDays)
	}
	return nil
}

// makeLockedBucket is the bucket creation of Create under
// Config.ObjectLockDays: Object Lock enabled (which enables versioning), and
// a default retention of the same days and mode, so that an object written
// without a retention (by another client, or a host without the setting)
// is retained all the same.
func (b *Backend) makeLockedBucket(ctx context.Context) error {
	err := b.retry(ctx, "create bucket", "", func() error {
		err := b.cl.MakeBucket(ctx, b.cfg.Bucket, minio.MakeBucketOptions{Region: b.cfg.Region, ObjectLocking: true})
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" {
			return nil
		}
		return err
	})
	if err != nil {
		return b.wrapErr("create bucket", "", err)
	}
	mode, days, unit := b.retentionMode(), uint(b.cfg.ObjectLockDays), minio.Days
	err = b.retry(ctx, "set object lock configuration", "", func() error {
		return b.cl.SetObjectLockConfig(ctx, b.cfg.Bucket, &mode, &days, &unit)
	})
	if err != nil {
		return b.wrapErr("set object lock configuration", "", err)
	}
	return nil
}

func (b *Backend) retentionMode() minio.RetentionMode {
	if b.cfg.ObjectLockMode == ObjectLockGovernance {
		return minio.Governance
	}
	return minio.Compliance
}

// setRetention adds the retention of a new file to opts.
func (b *Backend) setRetention(name string, opts *minio.PutObjectOptions) {
	if b.cfg.ObjectLockDays <= 0 || isLockFile(name) {
		return
	}
	opts.Mode = b.retentionMode()
	opts.RetainUntilDate = time.Now().Add(b.retentionFor(name)).UTC()
}

// retentionFor is how long a new file is retained: the period, and for a
// pack a tenth more (PackRetentionMargin), so that the manifest written
// after it and the snapshots of that tenth that reuse it need not extend
// its retention (repo.ExtendRetention).
func (b *Backend) retentionFor(name string) time.Duration {
	p := time.Duration(b.cfg.ObjectLockDays) * 24 * time.Hour
	if strings.HasPrefix(name, "data/") {
		p += PackRetentionMargin(p)
	}
	return p
}

// PackRetentionMargin is how much longer than the period a pack is
// retained when written or extended: a tenth of the period.
func PackRetentionMargin(period time.Duration) time.Duration { return period / 10 }

// version is one stored version of a key.
type version struct {
	id           string
	deleteMarker bool
}

// versions lists the versions of one file's key, newest first.
func (b *Backend) versions(ctx context.Context, name string) ([]version, error) {
	key := b.key(name)
	var out []version
	err := b.retry(ctx, "list versions", name, func() error {
		out = out[:0]
		for oi := range b.cl.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
			if oi.Err != nil {
				return oi.Err
			}
			if oi.Key == key {
				out = append(out, version{id: oi.VersionID, deleteMarker: oi.IsDeleteMarker})
			}
		}
		return nil
	})
	if err != nil {
		return nil, b.wrapErr("list versions", name, err)
	}
	return out, nil
}

// Retention reports until when a version of the file name is retained and
// in which mode ("COMPLIANCE" or "GOVERNANCE"), or the zero time when these
// credentials may delete every version now: the bucket has no Object Lock,
// every retention has expired, or it is GOVERNANCE and the backend bypasses
// governance. It implements repo.Retainer, which forget and prune ask before
// they delete anything.
func (b *Backend) Retention(ctx context.Context, name string) (time.Time, string, error) {
	if !b.locked {
		return time.Time{}, "", nil
	}
	if err := ValidateName(name); err != nil {
		return time.Time{}, "", err
	}
	vs, err := b.versions(ctx, name)
	if err != nil {
		return time.Time{}, "", err
	}
	var until time.Time
	var mode string
	now := time.Now()
	for _, v := range vs {
		if v.deleteMarker {
			continue
		}
		var m *minio.RetentionMode
		var u *time.Time
		err := b.retry(ctx, "get retention", name, func() (err error) {
			m, u, err = b.cl.GetObjectRetention(ctx, b.cfg.Bucket, b.key(name), v.id)
			return err
		})
		if code := minio.ToErrorResponse(err).Code; code == "NoSuchObjectLockConfiguration" || code == "NoSuchKey" || code == "NoSuchVersion" {
			continue
		}
		if err != nil {
			return time.Time{}, "", b.wrapErr("get retention", name, err)
		}
		if m == nil || u == nil || !u.After(now) {
			continue
		}
		if *m == minio.Governance && b.cfg.BypassGovernance {
			continue
		}
		if u.After(until) {
			until, mode = u.UTC(), string(*m)
		}
	}
	return until, mode, nil
}

// deleteVersions removes every version of name from a bucket with Object
// Lock, so that space is really freed. It refuses, deleting nothing, when a
// version is retained (ErrRetained). A lock file is hidden behind a delete
// marker instead when its versions cannot go (a default retention holds
// them, or the credentials may not delete versions).
func (b *Backend) deleteVersions(ctx context.Context, name string) error {
	until, mode, err := b.Retention(ctx, name)
	if err != nil {
		return err
	}
	if !until.IsZero() {
		if isLockFile(name) {
			return b.deleteMarker(ctx, name)
		}
		return fmt.Errorf("s3 backend: delete %s (bucket %q at %s): %w (%s) until %s",
			name, b.cfg.Bucket, b.cfg.Endpoint, ErrRetained, mode, until.Format(time.RFC3339))
	}
	vs, err := b.versions(ctx, name)
	if err != nil {
		return err
	}
	for _, v := range vs {
		err := b.retry(ctx, "delete version", name, func() error {
			return b.cl.RemoveObject(ctx, b.cfg.Bucket, b.key(name), minio.RemoveObjectOptions{VersionID: v.id, GovernanceBypass: b.cfg.BypassGovernance})
		})
		if err != nil {
			if isLockFile(name) {
				return b.deleteMarker(ctx, name)
			}
			return b.wrapErr("delete version "+v.id+" of", name, err)
		}
	}
	return nil
}

// deleteMarker is a DELETE without a version: on a versioned bucket it
// adds a delete marker and keeps every version.
func (b *Backend) deleteMarker(ctx context.Context, name string) error {
	err := b.retry(ctx, "delete", name, func() error {
		return b.cl.RemoveObject(ctx, b.cfg.Bucket, b.key(name), minio.RemoveObjectOptions{})
	})
	if err != nil {
		return b.wrapErr("delete", name, err)
	}
	return nil
}

// Recover undoes what credentials without the right to delete a retained
// version can do to a bucket with Object Lock: hide a file behind a delete
// marker, or put other bytes over it as a newer version. For every file
// with more than one version whose current version is a delete marker or
// fails good (for repository files: the content hashes to the name), it
// copies the newest version that passes good back over it, as a new
// version (retained like any other write). It deletes nothing, so the
// backup host's own credentials can run it. It returns the files it
// recovered, and the ones it found no good version of.
func (b *Backend) Recover(ctx context.Context, good func(name string, r io.Reader) (bool, error)) (recovered, lost []string, err error) {
	if !b.locked {
		return nil, nil, fmt.Errorf("s3 backend: bucket %q at %s: %w: nothing to recover from", b.cfg.Bucket, b.cfg.Endpoint, ErrNoObjectLock)
	}
	type ver struct {
		id     string
		marker bool
		latest bool
	}
	byKey := map[string][]ver{}
	var keys []string
	err = b.retry(ctx, "list versions", "", func() error {
		clear(byKey)
		keys = keys[:0]
		for oi := range b.cl.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: b.base, Recursive: true, WithVersions: true}) {
			if oi.Err != nil {
				return oi.Err
			}
			if _, ok := byKey[oi.Key]; !ok {
				keys = append(keys, oi.Key)
			}
			byKey[oi.Key] = append(byKey[oi.Key], ver{id: oi.VersionID, marker: oi.IsDeleteMarker, latest: oi.IsLatest})
		}
		return nil
	})
	if err != nil {
		return nil, nil, b.wrapErr("list versions", "", err)
	}
	slices.Sort(keys)
	check := func(name, id string) (bool, error) {
		var ok bool
		err := b.retry(ctx, "read version", name, func() error {
			obj, err := b.cl.GetObject(ctx, b.cfg.Bucket, b.key(name), minio.GetObjectOptions{VersionID: id})
			if err != nil {
				return err
			}
			defer obj.Close()
			ok, err = good(name, obj)
			return err
		})
		return ok, err
	}
	for _, key := range keys {
		vs := byKey[key]
		name := strings.TrimPrefix(key, b.base)
		if len(vs) < 2 || isLockFile(name) || ValidateName(name) != nil {
			continue
		}
		// Newest first: the listing gives a key's versions newest first,
		// the latest one flagged.
		slices.SortStableFunc(vs, func(x, y ver) int {
			switch {
			case x.latest == y.latest:
				return 0
			case x.latest:
				return -1
			}
			return 1
		})
		if !vs[0].marker {
			ok, err := check(name, vs[0].id)
			if err != nil {
				return recovered, lost, b.wrapErr("read", name, err)
			}
			if ok {
				continue
			}
		}
		from := ""
		for _, v := range vs[1:] {
			if v.marker {
				continue
			}
			ok, err := check(name, v.id)
			if err != nil {
				return recovered, lost, b.wrapErr("read", name, err)
			}
			if ok {
				from = v.id
				break
			}
		}
		if from == "" {
			lost = append(lost, name)
			continue
		}
		dst := minio.CopyDestOptions{Bucket: b.cfg.Bucket, Object: key}
		if b.cfg.ObjectLockDays > 0 {
			dst.Mode = b.retentionMode()
			dst.RetainUntilDate = time.Now().Add(time.Duration(b.cfg.ObjectLockDays) * 24 * time.Hour).UTC()
		}
		err := b.retry(ctx, "copy version", name, func() error {
			_, err := b.cl.CopyObject(ctx, dst, minio.CopySrcOptions{Bucket: b.cfg.Bucket, Object: key, VersionID: from})
			return err
		})
		if err != nil {
			return recovered, lost, b.wrapErr("copy version "+from+" of", name, err)
		}
		recovered = append(recovered, name)
	}
	return recovered, lost, nil
}

// RetentionPeriod is the retention every new file but locks gets
// (Config.ObjectLockDays), or 0; PackRetentionMargin more for packs. It
// implements repo.RetentionExtender.
func (b *Backend) RetentionPeriod() time.Duration {
	if !b.locked || b.cfg.ObjectLockDays <= 0 {
		return 0
	}
	return time.Duration(b.cfg.ObjectLockDays) * 24 * time.Hour
}

// PackMargin is PackRetentionMargin of the backend's period.
func (b *Backend) PackMargin() time.Duration { return PackRetentionMargin(b.RetentionPeriod()) }

// RetainedUntil returns the retain-until date of the current version of
// name (one GET ?retention request), the zero time when it has none or has
// no current version.
func (b *Backend) RetainedUntil(ctx context.Context, name string) (time.Time, error) {
	if err := ValidateName(name); err != nil {
		return time.Time{}, err
	}
	var u *time.Time
	err := b.retry(ctx, "get retention", name, func() (err error) {
		_, u, err = b.cl.GetObjectRetention(ctx, b.cfg.Bucket, b.key(name), "")
		return err
	})
	if code := minio.ToErrorResponse(err).Code; code == "NoSuchObjectLockConfiguration" || code == "NoSuchKey" || code == "NoSuchVersion" {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, b.wrapErr("get retention", name, err)
	}
	if u == nil {
		return time.Time{}, nil
	}
	return u.UTC(), nil
}

// ExtendRetention sets the retention of the current version of name to
// until (one PUT ?retention request), in the backend's mode. S3 lets any
// credentials with s3:PutObjectRetention lengthen a retention, never
// shorten it; the caller only asks for a later date than the file has.
func (b *Backend) ExtendRetention(ctx context.Context, name string, until time.Time) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	mode := b.retentionMode()
	until = until.UTC().Truncate(time.Second)
	err := b.retry(ctx, "extend retention", name, func() error {
		return b.cl.PutObjectRetention(ctx, b.cfg.Bucket, b.key(name), minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &until})
	})
	if err != nil {
		return b.wrapErr("extend retention of", name, err)
	}
	return nil
}
