package repo

import (
	"context"
	"time"
)

// What the external tests of package repo (package repo_test, which may
// import backup, restore and repotest) need of its internals.

// LockInfo is the content of a lock file.
type LockInfo = lockInfo

// NewLockInfo is the lock file content of this process.
var NewLockInfo = newLockInfo

// Bounds of the argon2id parameters, and the pack trailer's size.
const (
	MaxKDFTime      = maxKDFTime
	MinKDFMemoryKiB = minKDFMemoryKiB
	MaxKDFMemoryKiB = maxKDFMemoryKiB
	PackTrailerSize = packTrailerSize
)

// WriteLockForTest writes li as a new lock file and returns its name.
func (r *Repository) WriteLockForTest(ctx context.Context, li LockInfo) (string, error) {
	return writeLock(ctx, r, li)
}

// SetLockTimingForTest makes the locks taken from now on refresh every
// refresh and count as stale after stale.
func (r *Repository) SetLockTimingForTest(refresh, stale time.Duration) {
	r.locking.refreshEvery, r.locking.staleAfter = refresh, stale
}

// SetManifestLockWaitForTest makes LockManifests wait at most d for
// another manifest lock.
func (r *Repository) SetManifestLockWaitForTest(d time.Duration) { r.locking.manifestWait = d }

// SetLastOKForTest sets when the lock was last written, as after a stall.
func (l *Lock) SetLastOKForTest(at time.Time) { l.lastOK.Store(at.UnixNano()) }

// ReconcileNowForTest runs the pack reconciliation now.
func (r *Repository) ReconcileNowForTest(ctx context.Context) (bool, error) {
	return r.reconcileNow(ctx)
}

// ForgetReconciledForTest makes the next reconciliation list data/ again,
// as in a new process.
func (r *Repository) ForgetReconciledForTest() { r.reconciled = time.Time{} }

// CachedLocationsForTest is how many blob locations of a space the
// repository holds in its location cache.
func (r *Repository) CachedLocationsForTest(space string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.locs[StorageSpace(space)])
}
