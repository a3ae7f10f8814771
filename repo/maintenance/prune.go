package maintenance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize/english"
	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/engram"
	"memento/index"
	"memento/repo"
	"memento/repo/walarchive"
)

// PruneOptions tune Prune.
type PruneOptions struct {
	DryRun bool
	// MaxUnused is the share (0..1) of a pack's blob bytes that may be
	// unused before the pack is repacked, the dead files of a group of
	// small files counted as unused bytes of its pack; a pack repacked
	// regroups the live members of its groups that have a dead file
	// (prune_regroup.go); 1 never repacks (only packs with no used blob at
	// all are deleted).
	MaxUnused float64
	Workers   int
	Progress  *repo.Progress
	// AfterStep, if set, is called after every change prune makes to the
	// repository (one file written or deleted), with what it did. The CLI
	// uses it only for its crash test hook.
	AfterStep func(step string)
	// Pause, if set, is called once phase 1 is done, right before prune
	// takes the exclusive lock: the caller stops its own work on the
	// repository in this process (the agent pauses its WAL archiving and
	// waits for its other jobs) and returns the locks of this process the
	// exclusive lock may disregard, and resume, which Prune calls once the
	// exclusive section is over, whether it succeeded or not.
	Pause func(ctx context.Context) (held []*repo.Lock, resume func(), err error)
	// BetweenPhases, if set, is called after phase 1 (inventory, mark,
	// plan, repack) and before Pause and the exclusive lock. Tests use it
	// to let writers work during phase 1.
	BetweenPhases func(ctx context.Context) error
	// LockWait bounds how long phase 2 waits for the exclusive lock while
	// other processes hold locks they took after prune started (zero:
	// PruneLockWait).
	LockWait time.Duration
}

// DefaultMaxUnused is prune's default MaxUnused: 10 %.
const DefaultMaxUnused = 0.10

// PruneLockWait is how long phase 2 of a prune waits, by default, for the
// exclusive lock while backups or restores of other processes that started
// during phase 1 hold shared locks.
const PruneLockWait = 2 * time.Minute

// PruneResult is what prune found and did (or would do, in a dry run).
type PruneResult struct {
	DryRun            bool             `json:"dry_run"`
	Snapshots         int              `json:"snapshots"`
	Packs             int              `json:"packs"`
	PacksDeleted      int              `json:"packs_deleted"`  // no used blob
	PacksRepacked     int              `json:"packs_repacked"` // used blobs copied out, then deleted
	PacksWritten      int              `json:"packs_written"`  // new packs holding the copies
	PacksKept         int              `json:"packs_kept"`
	UnreadablePacks   []string         `json:"unreadable_packs,omitempty"` // unindexed packs whose header cannot be read: left alone
	BlobsUsed         int              `json:"blobs_used"`
	BlobsUnused       int              `json:"blobs_unused"`
	BytesBefore       int64            `json:"bytes_before"`     // all packs
	BytesAfter        int64            `json:"bytes_after"`      // all packs afterwards
	BytesFreed        int64            `json:"bytes_freed"`      // BytesBefore - BytesAfter
	BytesRepacked     int64            `json:"bytes_repacked"`   // sealed blob bytes copied into new packs
	GroupsRegrouped   int              `json:"groups_regrouped"` // groups of small files with a dead file in packs repacked: their live members written into new groups
	BytesRegrouped    int64            `json:"bytes_regrouped"`  // live member bytes (plaintext) moved into new groups
	UnusedLeft        int64            `json:"unused_left"`      // unused blob bytes left in kept packs
	IndexFilesWritten int              `json:"index_files_written"`
	IndexFilesDeleted int              `json:"index_files_deleted"`
	WAL               []WALPruneReport `json:"wal,omitempty"`
	DamageMarkers     int              `json:"damage_markers_deleted"` // markers of snapshots no longer present
	Warnings          []string         `json:"warnings,omitempty"`
	// Retained (a dry run on S3 Object Lock) lists the files it would
	// delete that are under a retention these credentials cannot lift:
	// the real run would refuse (repo.ErrRetained).
	Retained []repo.RetainedFile `json:"retained,omitempty"`
	// Exclusive is what phase 2, under the exclusive lock, found and how
	// long it held the lock (absent in a dry run, which takes none).
	Exclusive *PruneExclusive `json:"exclusive,omitempty"`
	Seconds   float64         `json:"seconds"`
}

// PruneExclusive is phase 2 of a prune: what appeared in the repository
// while phase 1 held only a shared lock, and how long the exclusive lock
// was waited for and held.
type PruneExclusive struct {
	Seconds        float64 `json:"seconds"`          // the exclusive lock held
	WaitSeconds    float64 `json:"wait_seconds"`     // from the end of phase 1 until it was held (the caller's pause, other processes' locks)
	CatchUpSeconds float64 `json:"catch_up_seconds"` // of Seconds: catching up with what phase 1's writers saved (the rest: writes and deletions)
	NewSnapshots   int     `json:"new_snapshots"`    // manifests saved during phase 1, marked in phase 2
	NewIndexFiles  int     `json:"new_index_files"`  // index files written during phase 1
	NewWALFiles    int     `json:"new_wal_files"`    // WAL archive files written during phase 1, their chunks marked
	WALReplanned   int     `json:"wal_replanned"`    // lines of history consolidated during phase 1, planned again
	PacksKeptBack  int     `json:"packs_kept_back"`  // packs planned to go that something saved during phase 1 uses: kept
}

// Prune deletes the data no snapshot and no needed WAL archive record uses,
// in two phases, so that backups and WAL archiving go on while it works:
//
// Phase 1, under a shared prune lock (repo.LockPrune: it coexists with
// backups, archiving, restores, but not with another prune or an exclusive
// lock): inventory of packs and index files, mark every blob the remaining
// snapshots reference and every chunk of the WAL archive that
// point-in-time recovery still needs (prune_wal.go), decide which packs
// go (no used blob) and which are repacked (their unused share, the dead
// files of their groups of small files counted, exceeds MaxUnused, or they
// hold a live member of a group regrouped: planRegroup),
// and repack: the used blobs are copied into new packs, which nothing
// describes yet (the live members of regrouped groups as new groups).
// Phase 1 only adds files.
//
// Phase 2, under the exclusive lock (repo.LockExclusiveOver), is short:
// it catches up with what the writers of phase 1 saved (prune_catchup.go:
// new index files, manifests and WAL archive files, marked incrementally; a
// pack planned to go that holds the only copy of something newly used is
// kept), then writes and deletes in the crash-safe order: WAL archive
// rewrite; new index files describing the new packs and every kept pack
// an old index file described; then the old index files; then the old
// packs. Until the index files go, everything is described twice; after,
// the old packs are unindexed garbage the next prune deletes. Nothing a
// remaining snapshot or needed archive record uses is ever without a
// described copy. Why nothing a writer of phase 1 saved is lost: see
// catchUp.
func Prune(ctx context.Context, r pruneRepo, opts PruneOptions) (*PruneResult, error) {
	start := time.Now()
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Progress == nil {
		opts.Progress = &repo.Progress{}
	}
	if opts.MaxUnused < 0 || opts.MaxUnused > 1 {
		return nil, fmt.Errorf("max unused %.2f: want a share between 0 and 1", opts.MaxUnused)
	}
	var lock *repo.Lock
	var err error
	if opts.DryRun {
		lock, err = r.Lock(ctx, false, "prune")
	} else {
		lock, err = r.LockPrune(ctx, "prune")
	}
	if err != nil {
		if errors.Is(err, repo.ErrLocked) {
			return nil, pruneLockedError(ctx, r, err)
		}
		return nil, err
	}
	defer lock.Unlock()
	ctx = lock.Context() // cancelled if the lock is lost
	if !opts.DryRun {
		// As before prune had phases: another lock (a 'wal watch', a
		// backup) makes it refuse at once rather than after phase 1. With
		// Pause, the locks of this process are its caller's (the agent's
		// session and jobs), which Pause stops for phase 2.
		if err := othersHold(ctx, r, opts.Pause != nil); err != nil {
			return nil, err
		}
	}
	// On a full repository the lock took the reserve: what is left is
	// enough for new index files, not for repacked packs. Delete what no
	// snapshot uses, which frees space without needing any.
	full := lock.UsedReserve() && opts.MaxUnused < 1
	if full {
		opts.MaxUnused = 1
	}

	pl, err := planPrune(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	res := pl.res
	if full {
		res.Warnings = append(res.Warnings, "the repository is full: this prune only deleted packs nothing uses and repacked none; run prune again once there is room")
	}
	if opts.DryRun {
		// Say what retention would refuse rather than promise to free
		// space that a real run could not.
		dels := pl.deletes()
		if res.Retained, err = repo.Retained(ctx, r.Backend(), dels); err != nil {
			return res, fmt.Errorf("prune: %w", err)
		}
		res.Seconds = time.Since(start).Seconds()
		return res, repo.RetainedError("prune", res.Retained, len(dels))
	}
	if err := repo.CheckDeletable(ctx, r.Backend(), "prune", pl.deletes()); err != nil {
		return res, err
	}
	step := opts.AfterStep
	if step == nil {
		step = func(string) {}
	}
	// Phase 1 ends with the repack: new packs only, described by nothing
	// until phase 2 writes their index files.
	written, err := repackPacks(ctx, r, pl, opts, step)
	if err != nil {
		return res, err
	}
	res.PacksWritten = len(written)
	if opts.BetweenPhases != nil {
		if err := opts.BetweenPhases(ctx); err != nil {
			return res, err
		}
	}
	if err := exclusivePhase(ctx, r, pl, lock, written, opts, step); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// PruneFigures are the figures of a prune's audit record (the CLI's and the
// agent's): what it deleted, repacked and freed, how long it took, and how
// long it held the exclusive lock (exclusive_seconds; absent when it never
// got it).
func PruneFigures(res *PruneResult) repo.Figures {
	f := repo.Figures{"packs_deleted": repo.Int(res.PacksDeleted), "packs_repacked": repo.Int(res.PacksRepacked),
		"packs_written": repo.Int(res.PacksWritten), "bytes_freed": repo.Int(res.BytesFreed), "seconds": repo.Float(res.Seconds)}
	if res.GroupsRegrouped > 0 {
		f["groups_regrouped"] = repo.Int(res.GroupsRegrouped)
		f["bytes_regrouped"] = repo.Int(res.BytesRegrouped)
	}
	if ex := res.Exclusive; ex != nil {
		f["exclusive_seconds"] = repo.Float(ex.Seconds)
		f["packs_kept_back"] = repo.Int(ex.PacksKeptBack)
	}
	return f
}

// exclusivePhase is phase 2: the caller's pause, the exclusive lock, the
// catch-up with what phase 1's writers saved, then the writes and deletions.
func exclusivePhase(ctx context.Context, r pruneRepo, pl *prunePlan, phase1 *repo.Lock, written []index.PackInfo, opts PruneOptions, step func(string)) error {
	waitFrom := time.Now()
	wait := opts.LockWait
	if wait <= 0 {
		wait = PruneLockWait
	}
	held := []*repo.Lock{phase1}
	if opts.Pause != nil {
		// Locks other processes took during phase 1 are waited out before
		// the caller pauses its own work, which would otherwise stay paused
		// for as long.
		if err := waitOthers(ctx, r, wait); err != nil {
			return err
		}
		h, resume, err := opts.Pause(ctx)
		if err != nil {
			return err
		}
		defer resume() // after the exclusive lock is released (deferred below)
		held = append(held, h...)
	}
	excl, err := lockExclusive(ctx, r, held, wait)
	if err != nil {
		return err
	}
	defer excl.Unlock()
	t0 := time.Now()
	ex := &PruneExclusive{WaitSeconds: t0.Sub(waitFrom).Seconds()}
	pl.res.Exclusive = ex
	ectx := excl.Context()
	err = catchUp(ectx, r, pl, ex)
	ex.CatchUpSeconds = time.Since(t0).Seconds()
	if err == nil {
		err = executePrune(ectx, r, pl, written, step)
	}
	ex.Seconds = time.Since(t0).Seconds()
	r.Logger().Debug("prune: exclusive section", "seconds", ex.Seconds, "wait_seconds", ex.WaitSeconds,
		"new_snapshots", ex.NewSnapshots, "new_index_files", ex.NewIndexFiles, "new_wal_files", ex.NewWALFiles, "packs_kept_back", ex.PacksKeptBack)
	return err
}

// lockExclusive takes the exclusive lock over held, waiting up to wait
// (with random pauses growing from 50 ms to 2 s) while other processes'
// locks are in the way: they were taken during phase 1, since prune
// refused to start under any (othersHold), so they are backups or
// restores that end.
func lockExclusive(ctx context.Context, r pruneRepo, held []*repo.Lock, wait time.Duration) (*repo.Lock, error) {
	deadline := time.Now().Add(wait)
	pause := 50 * time.Millisecond
	for {
		l, err := r.LockExclusiveOver(ctx, "prune", held...)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, repo.ErrLocked) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (waited %s for the exclusive lock after phase 1; nothing was deleted, and the packs it repacked into are unindexed until the next prune)",
				pruneLockedError(ctx, r, err), wait)
		}
		if pause == 50*time.Millisecond {
			r.Logger().Info(fmt.Sprintf("prune waits up to %s for the exclusive lock", wait), "err", err)
		}
		d := pause/2 + time.Duration(rand.Int64N(int64(pause)))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// waitOthers waits, up to wait, until no other process holds a live lock
// (with the pauses lockExclusive makes).
func waitOthers(ctx context.Context, r pruneRepo, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := 50 * time.Millisecond
	for {
		err := othersHold(ctx, r, true)
		if err == nil || !errors.Is(err, repo.ErrLocked) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (waited %s for it after phase 1; nothing was deleted, and the packs it repacked into are unindexed until the next prune)", err, wait)
		}
		d := pause/2 + time.Duration(rand.Int64N(int64(pause)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// othersHold fails with pruneLockedError when a live lock other than
// prune's own is held (by another process, when ownPaused: the caller
// pauses the work of this process for phase 2).
func othersHold(ctx context.Context, r pruneRepo, ownPaused bool) error {
	locks, err := r.Locks(ctx)
	if err != nil {
		return err
	}
	for _, l := range locks {
		if !l.Stale && !l.Prune && !(ownPaused && l.OfThisProcess()) {
			return pruneLockedError(ctx, r, fmt.Errorf("%w: %s lock of '%s' by %s pid %d", repo.ErrLocked, lockMode(l), l.Command, l.Host, l.PID))
		}
	}
	return nil
}

func lockMode(l repo.LockStatus) string {
	if l.Exclusive {
		return "exclusive"
	}
	return "shared"
}

// pruneLockedError explains who holds the repository, how long they have,
// and how to clear a lock whose process is gone.
func pruneLockedError(ctx context.Context, r pruneRepo, lockErr error) error {
	locks, err := r.Locks(ctx)
	if err != nil {
		return lockErr
	}
	var holders, remote []string
	for _, l := range locks {
		if l.Stale || (l.Prune && l.OfThisProcess()) {
			continue
		}
		holders = append(holders, fmt.Sprintf("%s lock of '%s' by %s pid %d, taken %s ago", lockMode(l), l.Command, l.Host, l.PID,
			time.Since(l.Time).Round(time.Second)))
		if !l.Local {
			remote = append(remote, fmt.Sprintf("lock %s: %s; if that process is gone, run 'memento unlock --remove %s'", l.ID(), l.Reason, l.ID()))
		}
	}
	if len(holders) == 0 {
		return lockErr
	}
	hint := fmt.Sprintf("If that process is gone, run 'memento unlock' (a lock not refreshed for %s, or whose process is gone from this boot and PID namespace, is stale)", repo.LockStale)
	if len(remote) > 0 {
		hint = strings.Join(remote, "; ") + fmt.Sprintf(" (plain 'memento unlock' removes a lock of another host or PID namespace only once it has not been refreshed for %s)", repo.LockStale)
	}
	return fmt.Errorf("%w: prune needs the repository to itself, but %d %s %s it: %s; wait for it to finish (stop 'wal watch' for the prune). %s",
		repo.ErrLocked, len(holders), english.PluralWord(len(holders), "process", ""), english.PluralWord(len(holders), "holds", "hold"), strings.Join(holders, "; "), hint)
}

// prunePlan is everything prune decided before changing anything, and
// what phase 2 needs to catch up with phase 1's writers.
type prunePlan struct {
	res        *PruneResult
	inv        *pruneInventory
	wal        []*walPrunePlan
	obsolete   []string // index files to delete (they list a pack that goes)
	repack     map[string][]*prunePack
	deleteList []*prunePack // deleted outright or after repacking
	describe   []index.PackInfo
	markers    []string // damage markers of snapshots no longer present

	m       *pruneMarker
	present map[string]bool // snapshot IDs marked
	bySpace map[string][]*repo.Snapshot
	damaged map[string]DamageRecord
	// walSeen is, per wal/ directory (a line of history), the files phase
	// 1 listed there; lines are the planned lines by directory.
	walSeen map[string]map[string]bool
	lines   map[string]*walPrunePlan
	// regroup: the groups whose live members repack writes into new
	// groups (prune_regroup.go), per space; unmarked: the groups taken
	// out of m.used for it; cancelled: those marked again since, which
	// stay
	regroup, unmarked, cancelled map[string]map[chunk.ID]bool
	// dropped: the groups only unowned member copies named, owned in an
	// unindexed pack (a stopped prune's), taken out of m.used
	// (dropOrphanGroups); cancelled holds those marked again too
	dropped map[string]map[chunk.ID]bool
	// regroupStored: per space, the bytes the new groups of the regrouped
	// groups are estimated to store (the dry run's bytes_after)
	regroupStored map[string]int64
}

func planPrune(ctx context.Context, r pruneRepo, opts PruneOptions) (*prunePlan, error) {
	// Every manifest in snapshots/, read from the repository itself, listed
	// before the inventory: a writer stores a manifest after the packs and
	// index file it references, so those are in the inventory. Manifests
	// saved later are phase 2's (catchUp).
	ids, err := r.ListSnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := inventory(ctx, r, opts.Workers)
	if err != nil {
		return nil, err
	}
	res := &PruneResult{DryRun: opts.DryRun, UnreadablePacks: inv.unreadable}
	for _, u := range inv.unreadable {
		res.Warnings = append(res.Warnings, "unreadable pack left in place: "+u)
	}
	pl := &prunePlan{res: res, inv: inv, repack: map[string][]*prunePack{}, walSeen: map[string]map[string]bool{}, lines: map[string]*walPrunePlan{}}

	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	damaged, err := DamagedSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	m := &pruneMarker{r: r, inv: inv, used: map[string]map[chunk.ID]struct{}{}, trees: map[string]map[chunk.ID]bool{}, based: map[string]map[chunk.ID]bool{}}
	bySpace := map[string][]*repo.Snapshot{}
	present := map[string]bool{}
	for _, id := range ids {
		sn, err := r.LoadSnapshotFile(ctx, id)
		if err != nil {
			if errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrFormat) {
				return nil, fmt.Errorf("%w: %v: what it references is unknown; remove it with 'memento forget %s' if it is beyond saving", ErrPruneUnsafe, err, id)
			}
			return nil, err
		}
		present[id.String()] = true
		missing, err := m.markSnapshot(ctx, sn)
		if err != nil {
			return nil, err
		}
		if missing > 0 {
			if _, ok := damaged[id.String()]; !ok {
				return nil, fmt.Errorf("%w: snapshot %s references %s that no pack holds or that cannot be read; run 'memento check --repair', which marks it damaged (prune then keeps what is left of it)",
					ErrPruneUnsafe, id.Short(), english.Plural(missing, "blob", ""))
			}
		}
		if sn.Space != "" {
			bySpace[sn.Space] = append(bySpace[sn.Space], sn)
		}
	}
	res.Snapshots = len(ids)
	for id, d := range damaged {
		if !present[id] {
			pl.markers = append(pl.markers, d.File)
		}
	}
	sort.Strings(pl.markers)

	// The WAL archive of every space the repository stores anything of.
	spaces := map[string]bool{}
	for _, p := range inv.packs {
		if p.info.Space != repo.PathsSpace && engram.ValidSpaceID(p.info.Space) == nil {
			spaces[p.info.Space] = true
		}
	}
	for sp := range bySpace {
		spaces[sp] = true
	}
	dirs, err := walDirs(ctx, r)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(spaces))
	for sp := range spaces {
		names = append(names, sp)
	}
	sort.Strings(names)
	for _, sp := range names {
		// Each line of history (identity, timeline) of the space is kept
		// by the remaining snapshots taken on it (a line without any keeps
		// its whole archive).
		lines, err := walarchive.SpaceLines(ctx, r, sp)
		if err != nil {
			return nil, err
		}
		hs, err := walarchive.LoadHistories(ctx, r, sp)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			delete(dirs, walarchive.LineDir(r, l))
			sns, lean := lineBases(hs[l.Identity], l, bySpace[sp])
			wp, err := planWAL(ctx, r, m, l, sns, lean)
			if err != nil {
				return nil, err
			}
			dir := walarchive.LineDir(r, l)
			pl.walSeen[dir] = map[string]bool{}
			if wp == nil {
				continue
			}
			wp.hist = hs[l.Identity]
			for _, f := range wp.files {
				pl.walSeen[dir][f] = true
			}
			pl.lines[dir] = wp
			rep := wp.report()
			res.WAL = append(res.WAL, rep)
			if len(wp.dropped) > 0 {
				pl.wal = append(pl.wal, wp)
			}
		}
	}
	for d := range dirs {
		// The archive of a database with an identity, or of a timeline
		// after 1 (walarchive.LineDir): kept whole, every chunk it names
		// marked used (its retention is not planned yet).
		seen := map[string]bool{}
		pl.walSeen[d] = seen
		line, err := keepLineDir(ctx, r, m, d, seen)
		if err != nil {
			return nil, err
		}
		if !line {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: WAL archive of a space no pack belongs to; left alone", d))
		}
	}

	pl.m, pl.present, pl.bySpace, pl.damaged = m, present, bySpace, damaged
	if err := m.markUsedDeltaBases(ctx); err != nil { // the WAL archives' chunks
		return nil, err
	}
	pruneDecide(r, pl, m, opts.MaxUnused)
	for { // the bases of the deltas that stay, until no decision changes
		n, err := m.markKeptDeltaBases(ctx)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		pruneDecide(r, pl, m, opts.MaxUnused)
	}
	if opts.DryRun {
		pl.walWarnings() // a real run warns once phase 2 has caught up
	}
	return pl, nil
}

// walWarnings warns of the chunks of kept WAL archive records no pack holds
// (already lost: prune does not make it worse, but says so). A real run
// asks in phase 2: a record saved during phase 1 may name a pack written
// after the inventory.
func (pl *prunePlan) walWarnings() {
	dirs := make([]string, 0, len(pl.lines))
	for d := range pl.lines {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		wp := pl.lines[d]
		if n := wp.missingChunks(pl.inv); n > 0 {
			pl.res.Warnings = append(pl.res.Warnings, fmt.Sprintf("space %s: %s of the WAL archive %s in no pack (already lost; 'memento pitr ranges' may promise more than restores)", wp.space, english.Plural(n, "chunk", ""), english.PluralWord(n, "is", "are")))
		}
	}
}

// pruneDecide picks one copy of every used blob, then an action per pack.
func pruneDecide(r pruneRepo, pl *prunePlan, m *pruneMarker, maxUnused float64) {
	inv, res := pl.inv, pl.res
	// Decided from scratch: planPrune decides again when keeping the
	// bases of the deltas that stay marks more blobs.
	res.BlobsUsed, res.Packs, res.BytesBefore, res.BlobsUnused = 0, 0, 0, 0
	res.PacksDeleted, res.PacksRepacked, res.BytesRepacked, res.PacksKept, res.UnusedLeft, res.PacksWritten = 0, 0, 0, 0, 0, 0
	pl.deleteList, pl.repack = nil, map[string][]*prunePack{}
	for _, p := range inv.packs {
		p.usedB, p.owned, p.ownedB, p.force = 0, nil, 0, false
	}
	for _, p := range inv.packs {
		for _, b := range p.info.Blobs {
			if _, ok := m.used[p.info.Space][b.ID]; ok {
				p.usedB += int64(b.Length)
			}
		}
	}
	for space, used := range m.used {
		for id := range used {
			pl.own(space, id)
		}
	}
	pl.planRegroup(maxUnused)
	goes := map[int32]bool{}
	for k, p := range inv.packs {
		p.phase1 = true
		res.Packs++
		res.BytesBefore += p.size
		res.BlobsUnused += len(p.info.Blobs) - len(p.owned)
		unused := p.blobB - p.ownedB
		switch {
		case len(p.owned) == 0:
			p.action = pruneDelete
		case p.force || p.blobB > 0 && float64(unused) > maxUnused*float64(p.blobB):
			p.action = pruneRepack
		default:
			p.action = pruneKeep
		}
		switch p.action {
		case pruneDelete:
			res.PacksDeleted++
			pl.deleteList = append(pl.deleteList, p)
			goes[int32(k)] = true
		case pruneRepack:
			res.PacksRepacked++
			res.BytesRepacked += p.ownedB
			pl.repack[p.info.Space] = append(pl.repack[p.info.Space], p)
			pl.deleteList = append(pl.deleteList, p)
			goes[int32(k)] = true
		default:
			res.PacksKept++
			res.UnusedLeft += unused
		}
	}
	pl.planIndex(goes)
	// Estimate of the packs the copies fill, for the dry run.
	res.BytesAfter = res.BytesBefore
	for _, p := range pl.deleteList {
		res.BytesAfter -= p.size
	}
	if target := r.Config().PackSize; target > 0 {
		for sp, ps := range pl.repack {
			b := pl.regroupStored[sp] // the live members' plaintext, in new groups
			for _, p := range ps {
				b += p.ownedB
			}
			res.PacksWritten += int((b + target - 1) / target)
			res.BytesAfter += b
		}
	}
	res.BytesFreed = res.BytesBefore - res.BytesAfter
	res.DamageMarkers = len(pl.markers)
}

// own gives the used blob id an owned copy: a whole copy first (a delta
// needs its base, format 4; a member its group, format 6), then the copy
// in the better pack (betterPack). A blob no pack holds is left (a damaged
// snapshot or archive, checked in planPrune).
func (pl *prunePlan) own(space string, id chunk.ID) {
	inv := pl.inv
	refs := inv.copies(space, id)
	if len(refs) == 0 {
		return
	}
	best := refs[0]
	for _, ref := range refs[1:] {
		_, rb := inv.blob(ref)
		_, bb := inv.blob(best)
		if rd, bd := !repo.StoredWhole(rb.Flags), !repo.StoredWhole(bb.Flags); rd != bd {
			if !rd {
				best = ref
			}
			continue
		}
		if betterPack(inv.packs[ref.pack], inv.packs[best.pack]) {
			best = ref
		}
	}
	p, b := inv.blob(best)
	p.owned = append(p.owned, best.blob)
	p.ownedB += int64(b.Length)
	pl.res.BlobsUsed++
}

// betterPack reports whether a used blob stored in packs a and b (two
// backups wrote it at once, or an interrupted prune copied it) is kept in
// a: an indexed one first, then the one with the larger used share (the
// copy a crashed repack wrote is all used), then more used bytes, then the
// smaller ID.
func betterPack(a, b *prunePack) bool {
	if (len(a.files) > 0) != (len(b.files) > 0) {
		return len(a.files) > 0
	}
	sa, sb := share(a.usedB, a.blobB), share(b.usedB, b.blobB)
	if sa != sb {
		return sa > sb
	}
	if a.usedB != b.usedB {
		return a.usedB > b.usedB
	}
	return repo.ShortHex(a.info.ID) < repo.ShortHex(b.info.ID)
}

// planIndex decides which index files are obsolete (they list a pack that
// goes, or nothing) and which kept packs need describing in a new one (no
// index file lists them, or only obsolete ones). Only the index files of
// phase 1's inventory can be obsolete: those written since describe
// packs prune keeps (catchUp).
func (pl *prunePlan) planIndex(goes map[int32]bool) {
	inv := pl.inv
	obsolete := map[string]bool{}
	pl.obsolete = pl.obsolete[:0]
	for name, ks := range inv.indexFiles {
		drop := len(ks) == 0
		for _, k := range ks {
			if goes[k] {
				drop = true
				break
			}
		}
		if drop {
			obsolete[name] = true
			pl.obsolete = append(pl.obsolete, name)
		}
	}
	sort.Strings(pl.obsolete)
	pl.describe = pl.describe[:0]
	for _, p := range inv.packs {
		if p.action != pruneKeep {
			continue
		}
		survives := false
		for _, f := range p.files {
			if !obsolete[f] {
				survives = true
				break
			}
		}
		if !survives {
			pl.describe = append(pl.describe, p.info)
		}
	}
	pl.res.IndexFilesDeleted = len(pl.obsolete)
}

func share(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// deletes lists the files executePrune deletes (damage markers aside: a
// marker that cannot go is a warning), packs first: on a repository under
// retention (S3 Object Lock) they are what is retained.
func (pl *prunePlan) deletes() []string {
	var out []string
	for _, p := range pl.deleteList {
		out = append(out, repo.PackName(p.info.ID))
	}
	out = append(out, pl.obsolete...)
	for _, wp := range pl.wal {
		out = append(out, wp.files...)
	}
	return out
}

// pruneDeletes is how many packs prune deletes at once.
const pruneDeletes = 8

// executePrune changes the repository in the crash-safe order, under the
// exclusive lock; the repacked packs (written) are already stored.
func executePrune(ctx context.Context, r pruneRepo, pl *prunePlan, written []index.PackInfo, step func(string)) error {
	res := pl.res
	// 1. WAL archive: drop the records no snapshot can be continued through.
	for _, wp := range pl.wal {
		var rep *WALPruneReport
		for i := range res.WAL {
			if res.WAL[i].Space == wp.space {
				rep = &res.WAL[i]
			}
		}
		if err := rewriteWAL(ctx, r, wp, step, rep); err != nil {
			return err
		}
	}
	// 2. (The used blobs of the packs to repack were copied into new
	// packs in phase 1.)
	// 3. New index files: the new packs, and the kept packs whose only
	// description is in an index file about to go. Written before
	// anything is deleted.
	res.IndexFilesWritten = 0
	if err := r.WriteIndexFiles(ctx, append(written, pl.describe...), func(name string) error {
		res.IndexFilesWritten++
		step("write " + name)
		return nil
	}); err != nil {
		return err
	}
	// From here on prune deletes. Ctrl-C no longer stops it halfway: each
	// deletion is safe, but finishing is tidier, and it is quick.
	dctx := context.WithoutCancel(ctx)
	if err := repo.LockHeld(ctx); err != nil {
		return err
	}
	// The local cache takes the new index files now (the obsolete ones
	// are still there: an incremental Sync, no reload of every file) ...
	if err := r.Sync(dctx); err != nil {
		return err
	}
	// ... and must not keep placing blobs in packs about to go: forget
	// what it learnt from pack headers (index rebuild) now; what it merged
	// from the obsolete index files goes with each of them (step 4).
	if err := dropCacheOnlyEntries(r); err != nil {
		return err
	}
	// 4. The superseded index files. First out of the local cache, with
	// the packs only they list and those packs' blobs (one transaction): no
	// file the cache keeps lists a pack that goes. After a crash before
	// they are deleted from the repository, the next Sync merges them again.
	if err := r.Index().RemoveFiles(pl.obsolete); err != nil {
		return fmt.Errorf("local index %s: %w", r.Index().Path(), err)
	}
	r.ForgetLocations()
	for _, name := range pl.obsolete {
		if err := r.Backend().Delete(dctx, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete index file %s: %w", name, err)
		}
		step("delete " + name)
	}
	// 5. The packs no index file describes any more, a few at once (each
	// deletion of the local backend syncs its directory).
	var stepMu sync.Mutex
	g, gctx := errgroup.WithContext(dctx)
	g.SetLimit(pruneDeletes)
	for _, p := range pl.deleteList {
		g.Go(func() error {
			if err := repo.LockHeld(ctx); err != nil {
				return err // a lost lock: a backup elsewhere may use this pack now
			}
			if err := r.Backend().Delete(gctx, repo.PackName(p.info.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("delete pack %s: %w", repo.ShortHex(p.info.ID), err)
			}
			stepMu.Lock()
			defer stepMu.Unlock()
			step("delete " + repo.PackName(p.info.ID))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// 6. Damage markers of snapshots that are gone.
	for _, name := range pl.markers {
		if err := r.Backend().Delete(dctx, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("could not delete damage marker %s: %v", name, err))
			continue
		}
		step("delete " + name)
	}
	res.BytesAfter = res.BytesBefore
	for _, p := range pl.deleteList {
		res.BytesAfter -= p.size
	}
	for _, w := range written {
		res.BytesAfter += w.Size
	}
	res.BytesFreed = res.BytesBefore - res.BytesAfter
	return nil
}

// dropCacheOnlyEntries removes from the local cache the entries that came
// from no repository index file (`index rebuild` reading pack headers): they
// may list packs prune is about to delete.
func dropCacheOnlyEntries(r pruneRepo) error {
	loaded, err := r.Index().LoadedFiles()
	if err != nil {
		return fmt.Errorf("local index %s: %w", r.Index().Path(), err)
	}
	for name := range loaded {
		if !strings.HasPrefix(name, repo.DirIndex+"/") {
			if err := r.Index().RemoveFile(name); err != nil {
				return fmt.Errorf("local index %s: %w", r.Index().Path(), err)
			}
		}
	}
	r.ForgetLocations()
	return nil
}

// keepLineDir marks used every chunk named by the wal/ files of dir when
// they belong to a line of history other than the legacy one (an identity
// or a timeline after 1), and reports whether they do.
func keepLineDir(ctx context.Context, r pruneRepo, m *pruneMarker, dir string, seen map[string]bool) (bool, error) {
	var names []string
	if err := r.Backend().List(ctx, dir, func(name string, size int64) error {
		names = append(names, name)
		seen[name] = true
		return nil
	}); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("list WAL archive %s: %w", dir, err)
	}
	line := false
	for _, n := range names {
		var f walarchive.ArchiveFile
		if err := r.LoadFile(ctx, n, walarchive.KindWALArchive, &f); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // consolidated away meanwhile
			}
			return false, err
		}
		if f.Identity == "" && f.Timeline <= 1 {
			continue
		}
		line = true
		for _, s := range f.Segments {
			for _, c := range s.Chunks {
				m.mark(f.Space, c.ID)
			}
		}
	}
	return line, nil
}
