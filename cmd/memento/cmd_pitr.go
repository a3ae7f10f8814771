package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"memento/engram"
	"memento/repo"
	"memento/repo/pitr"
	"memento/repo/restore"
	"memento/repo/walarchive"
	"memento/walreplay"
)

func newPITRCommand(a *app) *cobra.Command {
	c := &cobra.Command{Use: "pitr", Short: "Point-in-time recovery: what can be recovered"}
	var space, identity, host string
	ranges := &cobra.Command{
		Use:   "ranges --space ID",
		Short: "List the stretches of a space's history that can be recovered to any entry, per timeline",
		Long: `A range runs from the checkpoint of a snapshot through the last entry reachable
from that snapshot by gap-free archived WAL. Any instant or sequence inside a
range can be given to 'memento restore --space ID --at T | --to-seq N'.
An archived segment whose data is no longer in the repository (a lost pack)
cuts the range before it and is listed as broken, with the reason.

Every timeline of the space is listed (a point-in-time restore that cut the
history short starts a new one: docs/pitr.md, "Timelines"), with its parent
and fork point; restore reads the newest unless --timeline N says otherwise.
A space id that several databases have needs --identity (or --host).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if space == "" {
				return usagef("pitr ranges needs --space ID (the spaces with snapshots: 'memento snapshots')")
			}
			if err := engram.ValidSpaceID(space); err != nil {
				return usagef("%v", err)
			}
			r, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			if identity == "" && host == "" {
				if err := spaceKnown(cmd.Context(), r, space); err != nil {
					return err
				}
			}
			planner := pitr.NewPlanner(restore.Fetcher(r))
			sel := pitr.Select{Space: space, Identity: identity, Host: host}
			tls, err := planner.AllTimelines(cmd.Context(), r, sel)
			if err != nil {
				return err
			}
			v, err := pitr.Resolve(cmd.Context(), r, sel)
			if err != nil {
				return err
			}
			rs, arch, err := planner.RangesOf(cmd.Context(), r, v)
			if err != nil {
				return err
			}
			seq, ts := arch.End()
			multi := len(tls) > 1
			if v.Line.Identity != "" {
				a.answerf("space %s: identity %s, %d timeline(s), newest %d\n", space, v.Line.Identity, len(tls), v.Line.Timeline)
			}
			if len(rs) == 0 {
				a.answerf("space %s: nothing can be recovered yet on timeline %d (no snapshot with WAL positions)\n", space, v.Line.Timeline)
			}
			if multi {
				for _, tr := range tls {
					a.answerf("space %s: %s, archived through seq %d\n", space, tr, tr.ArchivedThrough)
					for _, g := range tr.Ranges {
						a.answerf("space %s:   timeline %d: %s, from %d snapshot(s)\n", space, tr.Timeline, g, g.Snapshots)
					}
					if len(tr.Ranges) == 0 {
						a.answerf("space %s:   timeline %d: no recoverable range\n", space, tr.Timeline)
					}
				}
			} else {
				for _, g := range rs {
					a.answerf("space %s: %s, from %d snapshot(s)\n", space, g, g.Snapshots)
				}
			}
			if seq > 0 {
				files, _ := arch.Files()
				a.answerf("space %s: WAL archived through seq %d (%s), %s in %s\n",
					space, seq, walreplay.FormatTime(ts), plural(len(arch.Segments()), "segment record"), plural(int(files), "wal/ file"))
			}
			broken := arch.Broken()
			for _, d := range broken {
				a.answerf("space %s: archived WAL %s; the ranges end before it\n", space, d)
			}
			if rs == nil {
				rs = []pitr.PITRRange{}
			}
			return a.emit(map[string]any{"space": space, "identity": v.Line.Identity, "timeline": v.Line.Timeline, "ranges": rs,
				"archived_seq": seq, "archived_ts": ts, "broken": broken, "timelines": tls})
		},
	}
	ranges.Flags().StringVar(&space, "space", "", "space id (required)")
	ranges.Flags().StringVar(&identity, "identity", "", "the database (identity) whose space to list, when several have a space of that id ('legacy': the one without identity)")
	ranges.Flags().StringVar(&host, "host", "", "the database of this host, when several have a space of that id")
	c.AddCommand(ranges)
	return c
}

// spacesRecoveredAtOnce is how many spaces `restore --all --at` recovers
// at once. Each lays its base snapshot down (disk-bound, as a restore) and
// then replays its WAL into a state up to the target (CPU-bound, and the
// state holds the space's records in memory or mapped), so two at once
// overlap one's writes with the other's replay while bounding the states
// held at once.
const spacesRecoveredAtOnce = 2

// restorePointInTime implements `restore --space ID|--all --at T|--to-seq N`.
func restorePointInTime(ctx context.Context, a *app, r *repo.Repository, f restoreFlags) error {
	t, err := a.parseTarget(f.at, f.toSeq, f.toSeq != 0, false)
	if err != nil {
		return err
	}
	mode, err := f.mode()
	if err != nil {
		return err
	}
	spaces := []string{f.space}
	if f.all {
		if f.space != "" {
			return usagef("give either --space or --all, not both")
		}
		if spaces, err = engramSpaces(ctx, r); err != nil {
			return err
		}
	}
	prog := &repo.Progress{}
	stop := a.showProgress("restore", -1, prog)
	var mu sync.Mutex
	var results []*restore.PITRResult
	var errs []error
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(spacesRecoveredAtOnce)
	replays := semaphore.NewWeighted(1) // one WAL replay at a time (PITROptions.Replays)
	for _, sp := range spaces {
		g.Go(func() error {
			res, err := restore.RestorePointInTime(gctx, r, restore.PITROptions{Space: sp, Target: t, DataDir: f.target, Progress: prog,
				Identity: f.identity, Host: f.host, Timeline: f.timeline, Mode: mode, ForceTarget: f.forceTarget, Replays: replays})
			a.auditPITR(gctx, r, sp, t.String(), res, err)
			if errors.Is(err, restore.ErrUnsafeTarget) {
				err = fmt.Errorf("%w (give --force-target to do it anyway)", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			results = append(results, res)
			return nil
		})
	}
	_ = g.Wait()
	stop()
	sort.Slice(results, func(i, j int) bool { return results[i].Space < results[j].Space })
	for _, res := range results {
		digest := res.StateDigest
		if digest == "" {
			digest = "unknown: the WAL does not start at seq 1"
		}
		if res.StateDigestKind != "" && res.StateDigest != "" {
			digest += ", kind " + res.StateDigestKind
		}
		a.printf("recovered space %s to seq %d at %s (state digest %s)\n", res.Space, res.Seq, res.Time, digest)
		a.printf("  from snapshot %s + %s, %s, into %s in %.1fs\n",
			res.Snapshot[:8], plural(int(res.ArchivedSegments), "archived segment"), plural(int(res.Records), "record"), res.Target, res.Seconds)
		if res.SafetyCopy != "" {
			a.printf("  the previous content is kept at %s\n", res.SafetyCopy)
		}
		a.printTimeline(res, f.target)
	}
	if len(results) > 0 || len(errs) == 0 {
		// A failure prints its JSON error on stderr, not an empty result.
		if results == nil {
			results = []*restore.PITRResult{}
		}
		if err := a.emit(results); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(errs) == 1 {
		return errs[0]
	}
	if len(errs) > 1 {
		return fmt.Errorf("%d of %d spaces failed: %w", len(errs), len(spaces), errors.Join(errs...))
	}
	return nil
}

// engramSpaces lists the spaces that have snapshots with WAL positions.
func engramSpaces(ctx context.Context, r *repo.Repository) ([]string, error) {
	all, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, sn := range all {
		if sn.Space != "" && sn.Engram != nil && !seen[sn.Space] {
			seen[sn.Space] = true
			out = append(out, sn.Space)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no space snapshot records WAL positions", repo.ErrNotFound)
	}
	sort.Strings(out)
	return out, nil
}

// spaceKnown says a space nothing is known of is not found (exit 7), unlike
// one whose WAL is archived but has no snapshot yet, or one whose history
// does not reach an instant asked for (exit 8).
func spaceKnown(ctx context.Context, r *repo.Repository, space string) error {
	dbs, err := walarchive.Databases(ctx, r, space)
	if err != nil {
		return err
	}
	if len(dbs) == 0 {
		return fmt.Errorf("space %s: %w: the repository has no snapshot and no archived WAL of this space", space, repo.ErrNotFound)
	}
	return nil
}

// printTimeline says what a Continue restore into target did to the
// space's timeline: a new one forked at the restored point, or the one it
// stays on.
func (a *app) printTimeline(res *restore.PITRResult, target string) {
	switch {
	case res.NewTimeline:
		a.printf("  recovered from timeline %d of identity %s, before its end: the next 'wal archive', 'wal watch' or 'backup' of %s records a new timeline forked at seq %d\n",
			res.Parent, walarchive.IdentityLabel(res.Identity), target, res.Seq)
	case res.Timeline > 0:
		a.printf("  on timeline %d of identity %s\n", res.Timeline, walarchive.IdentityLabel(res.Identity))
	}
}
