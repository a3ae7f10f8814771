package repo

import (
	"context"
	"time"
)

// Bridges for package walarchive (issue 13): symbols that walarchive needs
// but that stay in package repo for now, because files still in package repo
// (pitr, prune, verify, check) use them too, or because another feature owns
// them. The integrator replaces them once those users have moved.

// SaveWALFileBridge is saveWALFile (wal_store.go) for walarchive.
func (r *Repository) SaveWALFileBridge(ctx context.Context, w *WALArchive, host string, recs []WALSegmentRecord) error {
	return r.saveWALFile(ctx, w, host, recs)
}

// ConsolidateWALBridge is consolidateWAL (wal_store.go) for walarchive.
func (r *Repository) ConsolidateWALBridge(ctx context.Context, w *WALArchive, host string) error {
	return r.consolidateWAL(ctx, w, host)
}

// SnapshotWALEndBridge is snapshotWALEnd (wal_health.go) for walarchive.
func (r *Repository) SnapshotWALEndBridge(ctx context.Context, space string) (uint64, error) {
	return r.snapshotWALEnd(ctx, space)
}

// SyncPathBridge is syncPath (restore.go) for walarchive.
func SyncPathBridge(p string) error { return syncPath(p) }

// ExpireReconcileBridge makes the next ReconcilePacks list data/ again, as
// if reconcileFresh had passed since the last reconciliation (reconcile.go;
// for walarchive's tests).
func (r *Repository) ExpireReconcileBridge() {
	r.reconcileMu.Lock()
	r.reconciled = time.Time{}
	r.reconcileMu.Unlock()
}
