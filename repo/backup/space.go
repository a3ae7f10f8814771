package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"memento/engram"
	"memento/repo"
)

// SpaceOptions are what BackupSpace adds to a space backup.
type SpaceOptions struct {
	// Pause and Resume, if set, freeze and unfreeze the database around
	// the tiers (EngramRecorder.Pause and Resume).
	Pause, Resume func() error
	// Replays, if set, is shared by the space backups of one run so that
	// their state replays take turns (ReplayLimiter); nil: this backup's
	// replay does not wait for others.
	Replays *ReplayLimiter
	// AllowTierRewrite backs the space up even when tier files no longer
	// look like Engram's (engram.CheckTiers): after a deliberate rewrite in
	// another format. Without it such a backup is refused (ErrTiersGarbled).
	AllowTierRewrite bool
	// Latest, if set, loads the space's newest snapshot (nil when there is
	// none) in place of Repository.LatestSnapshot: `backup --all` finds
	// the newest snapshot of every space in one pass over the catalog
	// (Repository.LatestSnapshotIDs) and loads each here.
	Latest func(ctx context.Context) (*repo.Snapshot, error)
}

// ErrTiersGarbled is returned by BackupSpace, before it reads or stores
// anything, when tier files of the space no longer look like Engram's
// (engram.CheckTiers): what ransomware that encrypts a data dir in place
// leaves. The repository is untouched, so the snapshots before it remain
// the latest. It wraps repo.ErrCorrupt.
var ErrTiersGarbled = fmt.Errorf("%w: tier files garbled", repo.ErrCorrupt)

// maxTierProblemsShown bounds the files a refusal names on its one line.
const maxTierProblemsShown = 3

// checkTiers refuses a space whose tiers look garbled.
func checkTiers(dataDir, space string) error {
	probs, err := engram.CheckTiers(dataDir, space)
	if err != nil {
		return err
	}
	if len(probs) == 0 {
		return nil
	}
	var shown []string
	for _, p := range probs[:min(len(probs), maxTierProblemsShown)] {
		shown = append(shown, p.String())
	}
	more := ""
	if len(probs) > maxTierProblemsShown {
		more = fmt.Sprintf(" (and %d more)", len(probs)-maxTierProblemsShown)
	}
	return fmt.Errorf("backup refused: %d tier files no longer look like Engram's: %s%s; was the data dir encrypted in place (ransomware)? Nothing was stored and the earlier snapshots stay the latest; if the tiers were rewritten on purpose, back up with --allow-tier-rewrite: %w",
		len(probs), strings.Join(shown, "; "), more, ErrTiersGarbled)
}

// BackupSpace backs up opts.Space of opts.DataDir with its WAL positions and
// state digest in the manifest (EngramRecorder). Unless opts.NoParent, the
// parent (opts.Parent, else the latest snapshot of the space) lends its WAL
// end and digest when the WAL did not change, never from a snapshot marked
// damaged. An AfterFiles hook already in opts runs after the recorder's own.
// The database is resumed whatever happens. It is what `memento backup
// --data-dir` and `memento agent` run for each space.
func BackupSpace(ctx context.Context, r *repo.Repository, opts BackupOptions, so SpaceOptions) (*repo.Snapshot, error) {
	if !so.AllowTierRewrite {
		if err := checkTiers(opts.DataDir, opts.Space); err != nil {
			return nil, err
		}
	}
	rec := NewEngramRecorder(ctx, opts.DataDir, opts.Space)
	if !opts.NoParent {
		parent := opts.Parent
		if parent == nil {
			if so.Latest != nil {
				parent, _ = so.Latest(ctx) // none: nothing to reuse
			} else {
				parent, _ = r.LatestSnapshot(ctx, opts.Space) // none yet: nothing to reuse
			}
			opts.latest = parent
			if parent != nil && !sameLine(parent, opts.DataDir, opts.Space) {
				parent = nil // another database's or timeline's: its WAL end says nothing of this one
			}
		}
		if parent != nil && len(parent.Damage()) == 0 { // a marked parent's WAL end is not reused
			rec.Parent = parent.Engram
		}
	}
	rec.Pause, rec.Resume = so.Pause, so.Resume
	rec.DigestKind = r.Config().StateDigestKind()
	rec.Replays = so.Replays
	if ix := r.Index(); ix != nil {
		rec.CheckpointDir = filepath.Dir(ix.Path()) // the repository's private cache directory
	}
	defer rec.Done()
	defer rec.Close()
	after := opts.AfterFiles
	rec.Attach(&opts)
	if after != nil {
		wait := opts.AfterFiles
		opts.AfterFiles = func() error {
			if err := wait(); err != nil {
				return err
			}
			return after()
		}
	}
	sn, err := Backup(ctx, r, opts)
	if derr := rec.Done(); err == nil && derr != nil {
		return sn, derr
	}
	if err == nil && rec.Reused {
		slog.Info("WAL unchanged since the parent snapshot: reused its end position and state digest", "space", opts.Space)
	}
	if err == nil && rec.Resumed {
		slog.Info("state replay resumed from the previous replay's checkpoint: only the appended WAL was replayed", "space", opts.Space)
	}
	return sn, err
}

// sameLine reports whether sn was taken of the line of history (database
// identity and timeline) the data dir's space is on now: only such a
// snapshot may lend its WAL end and digest. A data dir without identity is
// the legacy database (identity ""), timeline 1 unless timelines.json says
// otherwise.
func sameLine(sn *repo.Snapshot, dataDir, space string) bool {
	id := ""
	if ident, err := engram.ReadIdentity(dataDir); err == nil {
		id = ident.Identity
	} else if !errors.Is(err, engram.ErrNoIdentity) {
		return false
	}
	tl, err := engram.ReadTimelines(dataDir)
	if err != nil {
		return false
	}
	return sn.Identity() == id && sn.Timeline() == tl.Of(space)
}
