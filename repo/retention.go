package repo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"memento/chunk"
	"memento/index"
)

// RetentionExtender is implemented by backends that write every file
// under a retention that can be lengthened but not shortened (S3 Object
// Lock). A snapshot's data must stay retained as long as the snapshot: a
// new snapshot reuses packs written long ago, whose retention may expire
// well before the new manifest's, after which the backup host's
// credentials could delete them (docs/operations/ransomware.md, "Packs
// shared by newer snapshots").
type RetentionExtender interface {
	// RetentionPeriod is the retention new files get; 0 when none.
	RetentionPeriod() time.Duration
	// PackMargin is how much longer than the period new packs are
	// retained, and how much longer ExtendRetention extends them: a
	// snapshot written within it after a pack needs no extension.
	PackMargin() time.Duration
	// RetainedUntil asks the storage until when the current version of
	// name is retained (the zero time: not at all).
	RetainedUntil(ctx context.Context, name string) (time.Time, error)
	// ExtendRetention lengthens the retention of name to until.
	ExtendRetention(ctx context.Context, name string, until time.Time) error
}

// RetentionReport is what extending the retention of a snapshot's packs
// did (backup's --json "retention").
type RetentionReport struct {
	Packs    int     `json:"packs"`    // packs the snapshot uses
	Queried  int     `json:"queried"`  // not known (cached) to be retained long enough: the storage was asked
	Extended int     `json:"extended"` // whose retention was lengthened
	Seconds  float64 `json:"seconds"`
}

// retentionWorkers bounds the concurrent retention requests.
const retentionWorkers = 8

// packRetention is how long the backend retains a new pack, 0 when not.
func (r *Repository) packRetention() time.Duration {
	if ex, ok := r.be.(RetentionExtender); ok && ex.RetentionPeriod() > 0 {
		return ex.RetentionPeriod() + ex.PackMargin()
	}
	return 0
}

// notePackRetained records in the local cache that a pack written at (or
// after) start is retained for the backend's period from then: a lower
// bound of what the storage set, so the next backups need not ask.
func (r *Repository) notePackRetained(id [32]byte, start time.Time) {
	if p := r.packRetention(); p > 0 {
		if err := r.ix.SetRetainedUntil(map[[32]byte]time.Time{id: start.Add(p)}); err != nil {
			r.log.Warn("local index: cannot record a pack's retention; the next backup asks the storage", "pack", ShortHex(id), "err", err)
		}
	}
}

// ExtendRetention makes every pack the tree root of space uses (its trees
// and chunks) retained at least as long as a file written now: packs whose
// cached retain-until is earlier are asked about, and those the storage
// retains for less are extended to now + period + the backend's pack
// margin (a tenth of the period: it spares daily backups from extending a
// shared pack every day, and a new pack, written with it too, needs no
// extension by the manifest written after it). Nothing is
// done, and nothing is read, on a backend without retention.
func (r *Repository) ExtendRetention(ctx context.Context, space string, root chunk.ID) (*RetentionReport, error) {
	ex, ok := r.be.(RetentionExtender)
	if !ok || ex.RetentionPeriod() <= 0 {
		return nil, nil
	}
	start := time.Now()
	packs, err := r.treePacks(ctx, space, root)
	if err != nil {
		return nil, fmt.Errorf("retention of the snapshot's packs: %w", err)
	}
	return r.extendPacks(ctx, ex, start, packs, "the snapshot's packs (the snapshot's data must stay retained as long as its manifest")
}

// ExtendChunkRetention is ExtendRetention for a file that names chunks of
// space directly (a WAL archive record): every pack holding a copy of one
// of ids is made retained at least as long as a file written now, asking
// the storage only about packs the local cache does not know to be.
func (r *Repository) ExtendChunkRetention(ctx context.Context, space string, ids []chunk.ID) (*RetentionReport, error) {
	ex, ok := r.be.(RetentionExtender)
	if !ok || ex.RetentionPeriod() <= 0 {
		return nil, nil
	}
	start := time.Now()
	packs, err := r.chunkPacks(ctx, space, ids)
	if err != nil {
		return nil, fmt.Errorf("retention of the WAL records' packs: %w", err)
	}
	return r.extendPacks(ctx, ex, start, packs, "the WAL records' packs (archived WAL must stay retained as long as its records")
}

// extendPacks extends the packs the local cache does not know to be
// retained until start + the period (what, in errors, names them and why).
func (r *Repository) extendPacks(ctx context.Context, ex RetentionExtender, start time.Time, packs [][32]byte, what string) (*RetentionReport, error) {
	need := start.Add(ex.RetentionPeriod())
	rep := &RetentionReport{Packs: len(packs)}
	known, err := r.ix.RetainedUntil(packs)
	if err != nil {
		return nil, fmt.Errorf("retention of %s): local index %s: %w", what, r.ix.Path(), err)
	}
	var ask [][32]byte
	for _, p := range packs {
		if u, ok := known[p]; !ok || u.Before(need) {
			ask = append(ask, p)
		}
	}
	rep.Queried = len(ask)
	learned, extended, firstErr := ExtendPackRetention(ctx, ex, ask)
	rep.Extended = extended
	// What was learned is true whatever failed.
	if err := r.ix.SetRetainedUntil(learned); err != nil {
		r.log.Warn("local index: cannot record the packs' retention; the next backup asks the storage again", "err", err)
	}
	if firstErr != nil {
		return rep, fmt.Errorf("retention of %s; the credentials need s3:GetObjectRetention and s3:PutObjectRetention): %w", what, firstErr)
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// ExtendPackRetention asks ex until when each of packs is retained, eight
// at a time, and extends those retained for less than now + the retention
// period to that plus the backend's pack margin. learned holds, for every
// pack answered, a lower bound of its retain-until date (true whatever
// failed); extended counts the packs whose retention was lengthened. The
// error is the first request's that failed, or the context's.
func ExtendPackRetention(ctx context.Context, ex RetentionExtender, packs [][32]byte) (learned map[[32]byte]time.Time, extended int, err error) {
	learned = map[[32]byte]time.Time{}
	need := time.Now().Add(ex.RetentionPeriod())
	extendTo := need.Add(ex.PackMargin())
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan [32]byte)
	for range min(retentionWorkers, len(packs)) {
		wg.Go(func() {
			for p := range next {
				name := PackName(p)
				u, err := ex.RetainedUntil(ctx, name)
				ext := false
				if err == nil && u.Before(need) {
					if err = ex.ExtendRetention(ctx, name, extendTo); err == nil {
						u, ext = extendTo, true
					}
				}
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
				case err == nil:
					learned[p] = u
					if ext {
						extended++
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, p := range packs {
		if ctx.Err() != nil {
			break
		}
		next <- p
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return learned, extended, firstErr
}

// treePacks is every pack holding a copy of a tree or chunk the tree root
// of space uses, or the base or group one of its chunks needs (chunkPacks).
func (r *Repository) treePacks(ctx context.Context, space string, root chunk.ID) ([][32]byte, error) {
	seen := map[chunk.ID]struct{}{}
	var ids []chunk.ID
	add := func(id chunk.ID) bool {
		if _, ok := seen[id]; ok {
			return false
		}
		seen[id] = struct{}{}
		ids = append(ids, id)
		return true
	}
	var walk func(id chunk.ID) error
	walk = func(id chunk.ID) error {
		if !add(id) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := r.LoadTree(ctx, space, id)
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) {
			// A damaged snapshot (retagged, say): extend what is left.
			r.log.Warn("retention of the snapshot's packs: a tree cannot be read; the packs of what it holds are not extended", "space", space, "tree", id.Short(), "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				add(c)
			}
			if n.Subtree != nil {
				if err := walk(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return nil, err
	}
	return r.chunkPacks(ctx, space, ids)
}

// chunkPacks is every pack holding a copy of one of ids in space, and
// every pack holding a copy of what a copy stored as a reference needs: a
// delta's base (format 4), a member's group (format 6). Their frames are
// read for it (RefTargets): the base or group is often in another pack
// (a delta of a later backup, a member and its group that prune's repack
// put into two packs), which would otherwise expire first. A frame that
// cannot be read only warns: what it names is unreadable already.
func (r *Repository) chunkPacks(ctx context.Context, space string, ids []chunk.ID) ([][32]byte, error) {
	locs, err := r.ix.LookupAll(StorageSpace(space), ids)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	set := map[[32]byte]struct{}{}
	var packs [][32]byte
	var refs []chunk.ID
	var refLocs []index.Location
	for id, ls := range locs {
		for _, l := range ls {
			if _, ok := set[l.Pack]; !ok {
				set[l.Pack] = struct{}{}
				packs = append(packs, l.Pack)
			}
			if !storedWhole(l) && BlobType(l.Type) == DataBlob {
				refs = append(refs, id)
				refLocs = append(refLocs, l)
			}
		}
	}
	if len(refs) == 0 {
		return packs, nil
	}
	targets, errs := r.RefTargets(ctx, space, refs, refLocs)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var want []chunk.ID
	for i, err := range errs {
		switch {
		case err == nil:
			want = append(want, targets[i])
		case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound):
			r.log.Warn("retention: a delta or member blob cannot be read; the pack of its base or group is not extended", "space", space, "blob", refs[i].Short(), "err", err)
		default:
			return nil, err
		}
	}
	tlocs, err := r.ix.LookupAll(StorageSpace(space), want)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	for _, ls := range tlocs {
		for _, l := range ls {
			if _, ok := set[l.Pack]; !ok {
				set[l.Pack] = struct{}{}
				packs = append(packs, l.Pack)
			}
		}
	}
	return packs, nil
}
