package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"memento/cmd/memento/instant"
	"memento/engram"
	"memento/repo"
	"memento/repo/restore"
	"memento/repo/walarchive"
)

type restoreFlags struct {
	target string
	space  string
	latest bool
	at     string
	toSeq  uint64
	all    bool
	// database and timeline (docs/pitr.md, "Timelines")
	timeline      uint32
	identity      string
	host          string
	asNew         bool
	forceIdentity bool
	// partial restore, damage, target (docs/cli.md, restore)
	patterns    restore.FilterPatterns
	skipDamaged bool
	forceTarget bool
}

// mode is what the restore does with the target's identity and timeline.
func (f restoreFlags) mode() (restore.IdentityMode, error) {
	switch {
	case f.asNew && f.forceIdentity:
		return 0, usagef("give either --as-new or --force-identity, not both")
	case f.asNew:
		return restore.AsNew, nil
	case f.forceIdentity:
		return restore.ForceIdentity, nil
	}
	return restore.Continue, nil
}

func newRestoreCommand(a *app) *cobra.Command {
	var f restoreFlags
	c := &cobra.Command{
		Use:   "restore SNAPSHOT --target DIR | (--space ID | --all) (--latest | --at T | --to-seq N) --target DIR",
		Short: "Restore a snapshot, verifying every byte, without ever overwriting the target",
		Long: `Restore writes into a temporary directory beside the target, verifies every
chunk and every file's BLAKE3 while writing, and only then renames it into
place. A non-empty target is first moved to TARGET.pre-restore-<time>; an
existing empty directory or mount point is filled in place (the restore is
staged in TARGET/.memento.restore-<n> and its entries moved up once all of
it verified). A non-empty target that is the root, the home directory, the
current directory or one above it is refused unless --force-target; a
non-empty mount point is refused (it cannot be moved aside).

A space snapshot restores into an Engram data dir: --target is the data dir
and only spaces/<id> is replaced.

--include/--exclude restore part of a plain snapshot: globs on the path
inside the snapshot ('*', '?', '**', [class], {a,b}); a pattern starting with
'/' is anchored at the snapshot's root, any other matches at any depth. An
excluded directory is skipped whole; with --include, a path is restored when
it or a directory above it matches. A pattern starting with '!' takes back
what the patterns before it matched: the last pattern that matches decides
(--include /etc --include '!/etc/ssl' restores /etc without /etc/ssl).
--iinclude/--iexclude are the same ignoring case; a negated pattern acts
within its own flag's list. The patterns are backup --exclude's
(docs/path-backups.md). A space is always restored whole.

--skip-damaged restores every file that reads and verifies and leaves out
those that do not (a damaged chunk in every copy), lists them (path, chunk,
pack) and exits 5: the incomplete result is kept in place, the one case
where a restore keeps a partial result. A space needs --as-new with it.`,
		Example: `  memento restore 1a2b3c4d --target /srv/restore
  memento restore --space tenant_01 --latest --target /var/lib/engram
  memento restore --all --latest --target /var/lib/engram
  memento restore --space tenant_01 --at 2026-11-21T14:28:59Z --target /var/lib/engram
  memento restore 1a2b3c4d --target /srv/restore --include '/etc/**' --exclude '*.tmp'
  memento restore 1a2b3c4d --target /srv/restore --skip-damaged`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.restore(cmd.Context(), f, args)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.target, "target", "", "directory to restore into (required)")
	fl.StringVar(&f.space, "space", "", "restore this space")
	fl.BoolVar(&f.latest, "latest", false, "with --space: the newest snapshot of the space")
	fl.StringVar(&f.at, "at", "", "with --space: recover the space as it was at this instant: "+instant.Forms)
	fl.Uint64Var(&f.toSeq, "to-seq", 0, "with --space: recover the space through this WAL sequence number")
	fl.BoolVar(&f.all, "all", false, "every space: with --latest its newest snapshot, with --at/--to-seq that point in time")
	fl.Uint32Var(&f.timeline, "timeline", 0, "with --at/--to-seq: read this timeline of the space (default: the newest; see 'memento pitr ranges')")
	fl.StringVar(&f.identity, "identity", "", "with --at/--to-seq: the database (identity) whose space to recover, when several have a space of that id ('legacy': the one without identity)")
	fl.StringVar(&f.host, "host", "", "with --at/--to-seq: the database of this host, when several have a space of that id")
	fl.BoolVar(&f.asNew, "as-new", false, "give the target a new database identity (a clone for testing never archives into the original's history)")
	fl.BoolVar(&f.forceIdentity, "force-identity", false, "restore into a data dir of another identity, which takes the snapshot's")
	fl.StringArrayVar(&f.patterns.Include, "include", nil, "restore only paths matching this glob, and what is below them; !GLOB takes back part of what earlier ones include (repeatable; plain snapshots)")
	fl.StringArrayVar(&f.patterns.IInclude, "iinclude", nil, "as --include, ignoring case (repeatable)")
	fl.StringArrayVar(&f.patterns.Exclude, "exclude", nil, "do not restore paths matching this glob, nor what is below them; !GLOB takes back what earlier ones exclude (repeatable; plain snapshots)")
	fl.StringArrayVar(&f.patterns.IExclude, "iexclude", nil, "as --exclude, ignoring case (repeatable)")
	fl.BoolVar(&f.skipDamaged, "skip-damaged", false, "restore what reads correctly, list the damaged files, keep the incomplete result and exit 5")
	fl.BoolVar(&f.forceTarget, "force-target", false, "restore over a non-empty root, home or current directory (or one above it), moving it aside")
	return c
}

func (a *app) restore(ctx context.Context, f restoreFlags, args []string) error {
	if f.target == "" {
		return usagef("--target DIR is required")
	}
	pitr := f.at != "" || f.toSeq != 0
	partial := len(f.patterns.Include)+len(f.patterns.IInclude)+len(f.patterns.Exclude)+len(f.patterns.IExclude) > 0
	switch {
	case f.at != "" && f.toSeq != 0:
		return usagef("give either --at or --to-seq, not both")
	case pitr && f.latest:
		return usagef("--latest restores the newest snapshot, --at/--to-seq a point in time: give one of them")
	case partial && (f.space != "" || f.all):
		return usagef("--include/--exclude restore part of a plain snapshot; a space is restored whole (read single files with 'memento mount')")
	case f.skipDamaged && pitr:
		return usagef("--skip-damaged does not go with --at/--to-seq: a point-in-time recovery replays the WAL over a whole space")
	case f.skipDamaged && (f.space != "" || f.all) && !f.asNew:
		return usagef("--skip-damaged with a space needs --as-new: a space with files left out must not archive into the original's history")
	case pitr && len(args) > 0:
		return usagef("--at/--to-seq pick the snapshot themselves; do not name one")
	case pitr && f.space == "" && !f.all:
		return usagef("--at/--to-seq need --space ID or --all")
	case !pitr && f.all && (!f.latest || len(args) > 0 || f.space != ""):
		return usagef("--all needs --latest (the newest snapshot of every space) or --at/--to-seq")
	case !pitr && !f.all && len(args) == 0 && !(f.space != "" && f.latest):
		return usagef("name a snapshot, or give --space ID with --latest, --at T or --to-seq N")
	case len(args) > 0 && f.latest:
		return usagef("give either a snapshot or --latest, not both")
	}
	if f.space != "" {
		if err := engram.ValidSpaceID(f.space); err != nil {
			return usagef("%v", err)
		}
	}
	r, err := a.openRead(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	if a.restoreMode, err = f.mode(); err != nil {
		return err
	}
	a.restoreSkipDamaged, a.restoreForceTarget = f.skipDamaged, f.forceTarget
	if pitr {
		if f.space != "" && f.identity == "" && f.host == "" {
			if err := spaceKnown(ctx, r, f.space); err != nil {
				return err
			}
		}
		return restorePointInTime(ctx, a, r, f)
	}
	if f.all {
		return a.restoreAllLatest(ctx, r, f.target)
	}
	var sn *repo.Snapshot
	if len(args) > 0 {
		sn, err = r.FindSnapshot(ctx, args[0])
	} else {
		sn, err = latestOfDatabase(ctx, r, f)
	}
	if err != nil {
		return err
	}
	if sn.Space != "" && partial {
		return usagef("--include/--exclude: snapshot %s is of space %s, which is restored whole (read single files with 'memento mount')", sn.ShortID(), sn.Space)
	}
	if sn.Space != "" && f.skipDamaged && !f.asNew {
		return usagef("--skip-damaged: snapshot %s is of space %s: a space with files left out needs --as-new", sn.ShortID(), sn.Space)
	}
	if a.restoreFilter, err = restore.NewFilter(f.patterns); err != nil {
		return usagef("%v", err)
	}
	prog := &repo.Progress{}
	stop := a.showProgress("restore", int64(sn.Summary.Bytes), prog)
	res, err := a.restoreOne(ctx, r, sn, f.target, prog, nil, 0)
	stop()
	if res != nil {
		if eerr := a.emit(restoreJSON{Snapshot: sn.ID.String(), Result: res}); eerr != nil && err == nil {
			err = eerr
		}
	}
	return err
}

// latestOfDatabase is the newest snapshot of the space of the database
// --identity/--host name (or the only database that has the space).
func latestOfDatabase(ctx context.Context, r *repo.Repository, f restoreFlags) (*repo.Snapshot, error) {
	id, err := walarchive.ResolveDatabase(ctx, r, f.space, f.identity, f.host)
	if err != nil {
		return nil, err
	}
	all, err := r.SnapshotsOf(ctx, f.space)
	if err != nil {
		return nil, err
	}
	var best *repo.Snapshot
	for _, sn := range all {
		if sn.Space == f.space && sn.Identity() == id && (best == nil || sn.Time.After(best.Time)) {
			best = sn
		}
	}
	if best == nil {
		return nil, fmt.Errorf("space %s: %w: no snapshot of this space of identity %s", f.space, repo.ErrNotFound, walarchive.IdentityLabel(id))
	}
	return r.LoadSnapshotFile(ctx, best.ID) // the verified manifest
}

type restoreJSON struct {
	Snapshot string                 `json:"snapshot"`
	Result   *restore.RestoreResult `json:"result"`
}

// restoreOne restores one snapshot, records it in the audit trail and says
// what it did. files, if set, is the gate shared with the restores running
// beside it (restoreAllLatest), and workers the restore's file workers
// (0: the default).
func (a *app) restoreOne(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, target string, prog *repo.Progress, files *restore.FileGate, workers int) (*restore.RestoreResult, error) {
	opts := restore.RestoreOptions{Progress: prog, Mode: a.restoreMode, Files: files, Workers: workers,
		Filter: a.restoreFilter, SkipDamaged: a.restoreSkipDamaged, ForceTarget: a.restoreForceTarget}
	res, err := restore.Restore(ctx, r, sn, target, opts)
	a.auditRestore(ctx, r, sn, res, err)
	if errors.Is(err, restore.ErrUnsafeTarget) {
		err = usagef("%v (give --force-target to do it anyway)", err)
	}
	var partial *restore.PartialError
	if err != nil && !errors.As(err, &partial) {
		if sn.Space != "" {
			return nil, fmt.Errorf("space %s: %w", sn.Space, err)
		}
		return nil, err
	}
	what := "snapshot " + sn.ShortID()
	if sn.Space != "" {
		what += " (space " + sn.Space + ")"
	}
	verified := "every byte verified"
	if partial != nil {
		verified = "every byte written verified; INCOMPLETE, see below"
	}
	a.printf("restored %s to %s: %s, %s, %s in %.1fs, %s\n",
		what, res.Target, plural(int(res.Files), "file"), plural(int(res.Dirs), "dir"), human(res.Bytes), res.Seconds, verified)
	if partial != nil {
		// The list goes to stderr even with --json or --quiet: it is
		// what the operator must act on (the JSON result has it too).
		for _, d := range partial.Damaged {
			fmt.Fprintf(a.stderr, "damaged, not restored: %s\n", d)
		}
		if sn.Space != "" {
			return res, fmt.Errorf("space %s: %w", sn.Space, err)
		}
		return res, err
	}
	if res.SafetyCopy != "" {
		a.printf("the previous content is kept at %s\n", res.SafetyCopy)
	}
	if res.Timeline != nil {
		a.printTimeline(res.Timeline, res.Target)
	}
	for _, d := range sn.Damage() {
		a.log.Warn("the snapshot was marked damaged at backup: its bytes are restored as they were stored", "snapshot", sn.ShortID(), "damage", d)
	}
	if len(res.NotRestored) > 0 {
		return res, notRestoredError(sn, res.NotRestored)
	}
	return res, nil
}

// spacesRestoredAtOnce is how many spaces `restore --all` restores at once,
// and filesRestoredAtOnce how many files all of them write at once: the
// spaces share one restore.FileGate, which gives a freed slot to the largest
// file waiting in any of them, so the memory in flight is that of
// filesRestoredAtOnce files however many spaces run. Before issue 18's
// session 9 two spaces ran at once on two file workers each, and the third
// space of a data dir ran alone at the end (docs/benchmarks.md). Each space
// has filesRestoredAtOnce workers split among the spaces running at once
// (at least 2), so a space that asks first cannot take every slot.
const (
	spacesRestoredAtOnce = 4
	filesRestoredAtOnce  = 4
)

// restoreAllLatest restores the newest snapshot of every space into the data
// dir target, spacesRestoredAtOnce at a time: a whole node back in one
// command.
func (a *app) restoreAllLatest(ctx context.Context, r *repo.Repository, target string) error {
	newest, err := r.LatestPerSpace(ctx)
	if err != nil {
		return err
	}
	if len(newest) == 0 {
		return fmt.Errorf("%w: the repository has no space snapshots", repo.ErrNotFound)
	}
	latest := map[string]*repo.Snapshot{}
	spaces := make([]string, len(newest))
	for i, sn := range newest {
		latest[sn.Space], spaces[i] = sn, sn.Space
	}
	var total int64
	for _, sp := range spaces {
		total += int64(latest[sp].Summary.Bytes)
	}
	prog := &repo.Progress{}
	stop := a.showProgress("restore", total, prog)
	out := make([]restoreJSON, len(spaces))
	partial := make([]error, len(spaces)) // --skip-damaged: what each space left out
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(spacesRestoredAtOnce)
	files := restore.NewFileGate(filesRestoredAtOnce)
	atOnce := min(len(spaces), spacesRestoredAtOnce)
	workers := max(2, (filesRestoredAtOnce+atOnce-1)/atOnce)
	for i, sp := range spaces {
		g.Go(func() error {
			sn, err := r.FindSnapshot(gctx, latest[sp].ID.String()) // re-read and verify the manifest
			if err != nil {
				return fmt.Errorf("space %s: %w", sp, err)
			}
			res, err := a.restoreOne(gctx, r, sn, target, prog, files, workers)
			out[i] = restoreJSON{Snapshot: sn.ID.String(), Result: res}
			if errors.As(err, new(*restore.PartialError)) {
				partial[i] = err // restored and kept: the other spaces go on
				return nil
			}
			return err
		})
	}
	err = g.Wait()
	stop()
	if err != nil {
		return err
	}
	if err := a.emit(out); err != nil {
		return err
	}
	return errors.Join(partial...)
}
