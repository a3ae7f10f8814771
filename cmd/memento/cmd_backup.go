package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/engram"
	"memento/repo"
	"memento/repo/agent"
	"memento/repo/backup"
)

type backupFlags struct {
	dataDir  string
	spaces   []string
	all      bool
	tags     []string
	host     string
	parent   string
	noParent bool
	// allowTierRewrite backs up spaces whose tiers no longer look like
	// Engram's (backup.ErrTiersGarbled).
	allowTierRewrite bool
	path             pathBackupFlags
	pathJob          *backup.BackupOptions // a path backup's options, from path
	metrics          oneShotMetrics
}

func newBackupCommand(a *app) *cobra.Command {
	var f backupFlags
	c := &cobra.Command{
		Use:   "backup [PATH...] | --data-dir DIR (--space ID... | --all)",
		Short: "Back up Engram spaces (one snapshot per space) or any paths",
		Example: `  memento backup --data-dir /var/lib/engram --all
  memento backup --data-dir /var/lib/engram --space tenant_01 --tag nightly
  memento backup /etc/engram
  memento backup /srv --exclude '*.tmp' --exclude /srv/cache --one-file-system
  pg_dump db | memento backup --stdin --stdin-filename db.sql`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if set := f.path.any(cmd.Flags()); len(set) > 0 && (f.dataDir != "" || len(f.spaces) > 0 || f.all) {
				return usagef("%s apply to path backups: a space is backed up whole", strings.Join(set, ", "))
			}
			var opts backup.BackupOptions
			if f.dataDir == "" && len(f.spaces) == 0 && !f.all {
				if err := f.path.apply(&opts, args, cmd.InOrStdin()); err != nil {
					return err
				}
				if len(opts.Paths) > 0 || opts.Stdin != nil {
					f.pathJob = &opts
				}
			}
			return a.backup(cmd.Context(), f, args)
		},
	}
	f.path.register(c.Flags())
	fl := c.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "", "Engram data directory")
	fl.StringSliceVar(&f.spaces, "space", nil, "space id to back up (repeatable)")
	fl.BoolVar(&f.all, "all", false, "back up every space of the data dir")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag the snapshot (repeatable, or a,b): 1-128 bytes, no '/', ',', whitespace or control characters")
	fl.StringVar(&f.host, "host", "", "host name to record (default: this host)")
	fl.StringVar(&f.parent, "parent", "", "compare with this snapshot instead of the latest")
	fl.BoolVar(&f.noParent, "force", false, "read every file, ignoring the parent snapshot")
	fl.BoolVar(&f.allowTierRewrite, "allow-tier-rewrite", false, "back up a space even if its tier files no longer look like Engram's (refused by default: a data dir encrypted in place by ransomware; docs/operations/ransomware.md)")
	a.registerQuiesceFlags(fl)
	f.metrics.register(fl, agent.JobBackup)
	return c
}

// backupJSON is the --json result of a backup.
type backupJSON struct {
	Snapshot string       `json:"snapshot"`
	Space    string       `json:"space,omitempty"`
	Paths    []string     `json:"paths"`
	Summary  repo.Summary `json:"summary"`
	// FollowedSymlinks are the symlinks (a space's directory, its wal/ or a
	// tier) backed up as the directories they point to.
	FollowedSymlinks []string `json:"followed_symlinks,omitempty"`
	Damage           []string `json:"damage,omitempty"` // the snapshot's damage marks
	// DryRun: nothing was written; Snapshot is empty.
	DryRun bool `json:"dry_run,omitempty"`
}

func (a *app) backup(ctx context.Context, f backupFlags, paths []string) (err error) {
	var jobs []backup.BackupOptions
	var badSpaces []error // entries of spaces/ that --all cannot back up, reported after the others
	switch {
	case f.dataDir != "":
		if len(paths) > 0 {
			return usagef("give either paths or --data-dir, not both")
		}
		spaces := f.spaces
		if f.all {
			if len(spaces) > 0 {
				return usagef("give either --space or --all, not both")
			}
			var err error
			if spaces, badSpaces, err = listSpaces(f.dataDir); err != nil {
				return err
			}
			if len(spaces) == 0 {
				return errors.Join(badSpaces...)
			}
		}
		if len(spaces) == 0 {
			return usagef("--data-dir needs --space ID or --all")
		}
		for _, s := range spaces {
			if err := engram.ValidSpaceID(s); err != nil {
				return usagef("%v", err)
			}
			jobs = append(jobs, backup.BackupOptions{Space: s, DataDir: f.dataDir})
		}
	case len(f.spaces) > 0 || f.all:
		return usagef("--space and --all need --data-dir")
	case f.pathJob == nil:
		return usagef("nothing to back up: give paths, or --data-dir with --space/--all")
	default:
		jobs = append(jobs, *f.pathJob)
	}
	var tags []string
	for _, v := range f.tags {
		tags = append(tags, strings.Split(v, ",")...)
	}
	f.tags = tags
	for _, t := range f.tags {
		if err := repo.ValidTag(t); err != nil {
			return usagef("--tag: %v", err)
		}
	}
	run, err := f.metrics.begin(agent.JobBackup)
	if err != nil {
		return err
	}
	runStart := time.Now()
	defer func() { err = run.finish(ctx, a, backupSpaces(jobs), runStart, err) }()
	r, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	var parent *repo.Snapshot
	if f.parent != "" {
		if len(jobs) > 1 {
			return usagef("--parent works with one space at a time")
		}
		if parent, err = r.FindSnapshot(ctx, f.parent); err != nil {
			return err
		}
	}
	// One shared lock covers every space of the command: a lock per space
	// cost each an fsynced lock file, its directory's fsync, a read of
	// every other lock and a removal (docs/benchmarks.md, "Issue 18,
	// session 7"). A dry run writes nothing and takes none.
	lctx := ctx
	if !jobs[0].DryRun {
		lock, err := r.Lock(ctx, false, "backup")
		if err != nil {
			for _, job := range jobs {
				a.auditBackup(ctx, r, job, nil, err)
			}
			return err
		}
		defer lock.Unlock()
		lctx = lock.Context() // cancelled if the lock is lost
		// The listing of data/ every space's dedup set is checked against
		// (Repository.ReconcilePacks, one for all the spaces of the
		// command) starts now, under the lock, while the first spaces
		// check their tiers and load their parents, instead of holding up
		// the first of them that needs it. Its error, if any, is the one
		// that space's backup gets when it reconciles again.
		reconciled := make(chan struct{})
		go func() {
			defer close(reconciled)
			_, _ = r.ReconcilePacks(lctx)
		}()
		defer func() { <-reconciled }()
	}
	// The parents of the spaces: the newest snapshot of each, found in one
	// pass over the catalog for all of them. Failing that, each space
	// looks its own up.
	var latest map[string]chunk.ID
	if len(jobs) > 1 && parent == nil && !f.noParent && jobs[0].Space != "" {
		spaces := make([]string, len(jobs))
		for i, job := range jobs {
			spaces[i] = job.Space
		}
		latest, _ = r.LatestSnapshotIDs(spaces)
	}
	// The snapshots' entries in the local catalog are put together once
	// every space is done (Repository.DeferCatalog); a dry run saves none.
	flushCatalog := func() error { return nil }
	if !jobs[0].DryRun {
		flushCatalog = r.DeferCatalog()
		// For the early returns; after the jobs its error is reported
		// below (a second call does nothing).
		defer func() { _ = flushCatalog() }()
	}
	pipe := chunk.NewPipeline(0, chunk.DefaultLevel)
	defer pipe.Close()
	prog := &repo.Progress{}
	var total int64 = -1
	if a.isTTY() {
		total = estimateSize(jobs)
	}
	stop := a.showProgress("backup", total, prog)
	var mu sync.Mutex
	var results []backupJSON
	var damaged []error // snapshots saved but marked damaged; the other spaces go on
	// Spaces are backed up in parallel; they share the pipeline's workers.
	// One space failing does not stop the others: each error names its
	// space, and the command fails once all are done.
	var errs []error
	g, gctx := errgroup.WithContext(lctx)
	g.SetLimit(spacesBackedUpAtOnce)
	replays := backup.NewReplayLimiter(backup.ConcurrentReplays) // the spaces' state replays take turns
	for _, job := range jobs {
		job.Tags, job.Host, job.Parent, job.NoParent, job.Pipeline, job.Progress = f.tags, f.host, parent, f.noParent, pipe, prog
		job.Locked = !job.DryRun
		g.Go(func() error {
			jobStart := time.Now()
			sn, err := a.backupOne(gctx, r, job, replays, f.allowTierRewrite, latest)
			if !job.DryRun {
				run.observeSnapshot(job.Space, jobStart, sn, err)
				a.auditBackup(gctx, r, job, sn, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if sn != nil && errors.Is(err, repo.ErrMarkedDamaged) {
				results = append(results, backupJSON{Snapshot: sn.ID.String(), Space: sn.Space, Paths: sn.Paths, Summary: sn.Summary,
					FollowedSymlinks: sn.Followed, Damage: sn.Damage()})
				damaged = append(damaged, fmt.Errorf("space %s: %w", job.Space, err))
				return nil
			}
			if err != nil {
				if job.Space != "" {
					err = fmt.Errorf("space %s: %w", job.Space, err)
				}
				errs = append(errs, err)
				return nil
			}
			if job.DryRun {
				results = append(results, backupJSON{Paths: sn.Paths, Summary: sn.Summary, DryRun: true})
				return nil
			}
			results = append(results, backupJSON{Snapshot: sn.ID.String(), Space: sn.Space, Paths: sn.Paths, Summary: sn.Summary, FollowedSymlinks: sn.Followed})
			return nil
		})
	}
	_ = g.Wait()
	ferr := flushCatalog()
	if cerr := ctx.Err(); cerr != nil {
		errs = []error{cerr} // interrupted: that is what to report
	} else {
		errs = append(errs, badSpaces...)
		if ferr != nil {
			errs = append(errs, ferr)
		}
	}
	err = errors.Join(errs...)
	stop()
	sort.Slice(results, func(i, j int) bool { return results[i].Space < results[j].Space })
	for _, res := range results {
		s := res.Summary
		if res.DryRun {
			a.printf("dry run, nothing written: would save %s, %s, %s (%s new), %s excluded\n",
				plural(int(s.Files), "file"), plural(int(s.Dirs), "dir"), human(s.Bytes), human(s.NewBytes), plural(int(s.Excluded), "entry"))
			continue
		}
		what := "paths"
		if res.Space != "" {
			what = "space " + res.Space
		}
		a.printf("snapshot %s saved: %s, %s, %s (%s new, %s stored, %s) in %.1fs\n",
			res.Snapshot[:8], what, plural(int(s.Files), "file"), human(s.Bytes), human(s.NewBytes), human(s.StoredBytes),
			plural(int(s.UnchangedFiles), "unchanged file"), s.Seconds)
		if len(res.FollowedSymlinks) > 0 {
			a.printf("snapshot %s: symlinks backed up as the directories they point to: %s\n", res.Snapshot[:8], strings.Join(res.FollowedSymlinks, ", "))
		}
	}
	if err != nil {
		if len(results) > 0 {
			a.printf("%d of %s %s saved before the error\n", len(results), plural(len(jobs)+len(badSpaces), "snapshot"),
				english.PluralWord(len(results), "was", "were"))
		}
		return err
	}
	if len(damaged) > 0 {
		if err := a.emit(results); err != nil {
			return err
		}
		if len(damaged) == 1 {
			return damaged[0]
		}
		for _, d := range damaged {
			a.log.Error("snapshot marked damaged", "err", d)
		}
		return fmt.Errorf("%s saved but marked damaged (listed above): %w", plural(len(damaged), "snapshot"), repo.ErrMarkedDamaged)
	}
	return a.emit(results)
}

// spacesBackedUpAtOnce is how many spaces `backup --all` backs up at once.
// They share one chunk pipeline, whose workers bound the CPU spent cutting,
// hashing and compressing whatever the number of spaces, and one
// ReplayLimiter for their state replays, and the repository's pack writes
// (repo's packPool: two at once on a local directory); each space adds
// memory of its own (the pack it fills, read buffers). Four keep the
// pipeline fed while a space is paused, staging or between files, and
// bound that memory.
const spacesBackedUpAtOnce = 4

// estimateSize sums file sizes for the progress bar; cheap next to reading them.
func estimateSize(jobs []backup.BackupOptions) int64 {
	var total int64
	add := func(p string) {
		_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					total += fi.Size()
				}
			}
			return nil
		})
	}
	for _, j := range jobs {
		if j.Space != "" {
			add(engram.SpaceDir(j.DataDir, j.Space))
		}
		for _, p := range j.Paths {
			add(p)
		}
	}
	return total
}

// plural is n and noun in agreement with it, for human output: "1 file",
// "0 files", "2 entries" (go-humanize's english.PluralWord, which knows the
// irregular ones: "1 match", "2 matches"). The digits are not grouped, so
// that a summary line stays easy to grep and parse; --json is for machines.
func plural(n int, noun string) string {
	return fmt.Sprintf("%d %s", n, english.PluralWord(n, noun, ""))
}

func human(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
