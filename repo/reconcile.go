package repo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"memento/chunk"
)

// KnownBlobs returns the blobs of a space that a backup or a WAL archive run
// may deduplicate against: those the local index places in a pack that
// exists at the size the index says. It lists data/ once (one paginated LIST
// per 1,000 packs on S3) and drops from the local index every pack that is
// missing or has another size, so that a lost or truncated pack is never
// deduplicated against: its blobs are stored again by the next backup
// instead of being referenced by a snapshot that cannot be restored. The
// caller holds a repository lock, so no prune deletes packs meanwhile.
func (r *Repository) KnownBlobs(ctx context.Context, space string) (map[chunk.ID]struct{}, error) {
	if _, err := r.ReconcilePacks(ctx); err != nil {
		return nil, err
	}
	space = StorageSpace(space)
	known, trees, err := r.ix.SpaceScan(space, treesToCache())
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	// The backup reads the parent snapshot's trees next, one per directory:
	// their locations go into the location cache now, from the same pass
	// (cacheTreeLocations says why).
	r.cacheLocations(space, trees)
	r.markTreesCached(space)
	return known, nil
}

// ReconcilePacks compares the packs the local index knows with those in the
// repository and forgets the ones that are gone or changed size, with one
// warning line naming them.
//
// The cached packs are read before the listing starts: a pack enters the
// cache only after it was written, so every pack read from the cache is in
// the listing unless it is really gone, even while another backup (in this
// process or another) adds packs meanwhile.
//
// Backups and archive runs that start within reconcileFresh of the last
// reconciliation in this process (the spaces of `backup --all`, the spaces
// of a starting `wal watch`) share its listing instead of each listing
// data/ again.
//
// It returns how many reconciliations of this process have dropped packs so
// far: a long-lived holder of a known set (wal watch) reloads its set when
// the number changes.
func (r *Repository) ReconcilePacks(ctx context.Context) (uint64, error) {
	r.reconcileMu.Lock()
	defer r.reconcileMu.Unlock()
	if !r.reconciled.IsZero() && time.Since(r.reconciled) < reconcileFresh {
		return r.dropGen, nil
	}
	start := time.Now()
	dropped, err := r.reconcileNow(ctx)
	if err != nil {
		return r.dropGen, err
	}
	if dropped {
		r.dropGen++
	}
	r.reconciled = start
	return r.dropGen, nil
}

// reconcileFresh is how long a reconciliation is reused within a process.
const reconcileFresh = 30 * time.Second

// reconcileNow does the reconciliation and reports whether it dropped packs.
func (r *Repository) reconcileNow(ctx context.Context) (bool, error) {
	cached, err := r.ix.Packs()
	if err != nil {
		return false, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	sizes := make(map[[32]byte]int64, len(cached))
	if err := r.be.List(ctx, DirData, func(name string, size int64) error {
		sizes[NameHash(name)] = size
		return nil
	}); err != nil {
		return false, fmt.Errorf("list packs: %w", err)
	}
	var gone [][32]byte
	var names []string
	for _, p := range cached {
		size, ok := sizes[p.ID]
		switch {
		case !ok:
			names = append(names, ShortHex(p.ID)+" (missing)")
		case size != p.Size:
			names = append(names, fmt.Sprintf("%s (%d bytes, indexed as %d)", ShortHex(p.ID), size, p.Size))
		default:
			continue
		}
		gone = append(gone, p.ID)
	}
	if len(gone) == 0 {
		return false, nil
	}
	if len(names) > 10 {
		names = append(names[:10], fmt.Sprintf("and %d more", len(names)-10))
	}
	r.log.Warn("packs missing or damaged in the repository; their blobs are stored again (run 'memento check' to see which snapshots they spoil)",
		"packs", strings.Join(names, ", "))
	if err := r.ix.DropPacks(gone); err != nil {
		return false, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	r.ForgetLocations()
	return true, nil
}
