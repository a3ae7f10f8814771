package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"memento/repo"
	"memento/repo/backend/s3"
)

// s3Flags tune S3 repositories; each has an environment default so that
// cron jobs and systemd units need no flags (see docs/replication.md).
type s3Flags struct {
	storageClass string
	connections  int
	timeout      time.Duration
	retries      int
	// Object Lock (docs/operations/ransomware.md)
	objectLockDays   int
	objectLockMode   string
	bypassGovernance bool
}

func (a *app) addS3Flags(pf *pflag.FlagSet) {
	pf.StringVar(&a.s3.storageClass, "s3-storage-class", "", "S3 storage class of new objects, e.g. STANDARD_IA or INTELLIGENT_TIERING (env MEMENTO_S3_STORAGE_CLASS)")
	pf.IntVar(&a.s3.connections, "s3-connections", 0, "at most this many connections to the S3 endpoint (env MEMENTO_S3_CONNECTIONS; default 8)")
	pf.DurationVar(&a.s3.timeout, "s3-timeout", 0, "drop an S3 connection that moved no data for this long, and retry (env MEMENTO_S3_TIMEOUT; default 60s)")
	pf.IntVar(&a.s3.retries, "s3-retries", 0, "retries of a failed S3 request, with backoff (env MEMENTO_S3_RETRIES; default 4)")
	pf.IntVar(&a.s3.objectLockDays, "s3-object-lock-days", 0, "write every file under an S3 Object Lock retention of this many days; init makes the bucket with Object Lock (env MEMENTO_S3_OBJECT_LOCK_DAYS; docs/operations/ransomware.md)")
	pf.StringVar(&a.s3.objectLockMode, "s3-object-lock-mode", "", "retention mode of --s3-object-lock-days: compliance (nobody can delete before it expires) or governance (credentials with s3:BypassGovernanceRetention can) (env MEMENTO_S3_OBJECT_LOCK_MODE; default compliance)")
	pf.BoolVar(&a.s3.bypassGovernance, "s3-bypass-governance", false, "delete files under GOVERNANCE retention: forget and prune on the privileged host (env MEMENTO_S3_BYPASS_GOVERNANCE)")
}

// s3ProbeTimeout bounds the bucket check when a repository is opened.
const s3ProbeTimeout = 2 * time.Minute

// openS3Backend opens an s3: URL with credentials from the environment and
// the --s3-* flags. A missing bucket is "no repository" (exit 3), except for
// init, which creates it.
func (a *app) openS3Backend(ctx context.Context, url string, create bool) (*s3.Backend, error) {
	cfg, err := s3.ConfigFromEnv(url)
	if err != nil {
		if errors.Is(err, s3.ErrBadURL) {
			return nil, usagef("%v", err)
		}
		return nil, usagef("repository %s: %v", url, err)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, usagef("repository %s: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or MEMENTO_S3_ACCESS_KEY and MEMENTO_S3_SECRET_KEY)", url)
	}
	if a.s3.storageClass != "" {
		cfg.StorageClass = a.s3.storageClass
	}
	if a.s3.connections > 0 {
		cfg.Connections = a.s3.connections
	}
	if a.s3.timeout > 0 {
		cfg.IOTimeout = a.s3.timeout
	}
	if a.s3.retries > 0 {
		cfg.Retries = a.s3.retries
	}
	if a.s3.objectLockDays < 0 || a.s3.objectLockDays > s3.MaxObjectLockDays {
		return nil, usagef("--s3-object-lock-days %d: want 0 to %d", a.s3.objectLockDays, s3.MaxObjectLockDays)
	}
	if a.s3.objectLockDays > 0 {
		cfg.ObjectLockDays = a.s3.objectLockDays
	}
	if m := strings.ToLower(a.s3.objectLockMode); m != "" {
		if m != s3.ObjectLockCompliance && m != s3.ObjectLockGovernance {
			return nil, usagef("--s3-object-lock-mode %q: want compliance or governance", a.s3.objectLockMode)
		}
		cfg.ObjectLockMode = m
	}
	if a.s3.bypassGovernance {
		cfg.BypassGovernance = true
	}
	ctx, cancel := context.WithTimeout(ctx, s3ProbeTimeout)
	defer cancel()
	var be *s3.Backend
	if create {
		be, err = s3.Create(ctx, cfg)
	} else {
		be, err = s3.Open(ctx, cfg)
	}
	switch {
	case errors.Is(err, s3.ErrNoBucket):
		return nil, fmt.Errorf("%w at %s: %v", repo.ErrNoRepository, url, err)
	case errors.Is(err, s3.ErrNoObjectLock):
		return nil, usagef("%v", err)
	case err != nil:
		return nil, err
	}
	return be, nil
}
