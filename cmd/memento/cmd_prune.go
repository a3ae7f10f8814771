package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/dustin/go-humanize/english"
	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/maintenance"
)

type pruneFlags struct {
	dryRun    bool
	maxUnused float64
}

func newPruneCommand(a *app) *cobra.Command {
	var f pruneFlags
	var maxUnused string
	c := &cobra.Command{
		Use:   "prune [--dry-run] [--max-unused 10%]",
		Short: "Delete the data no snapshot (and no needed archived WAL) uses",
		Long: `prune refuses while another process holds a lock (a backup, restore, 'wal
watch' or mount; it names the holder). Phase 1, under a shared prune lock
that lets backups and WAL archiving start meanwhile: it marks every blob the
remaining snapshots use and every archived WAL chunk point-in-time recovery
still needs, plans to delete packs with no used blob and to repack packs
whose unused share exceeds --max-unused (the dead files of a group of small
files counted as unused), and repacks (used blobs verified and copied into
new packs; the live files of each group with a dead file are written into
new groups). Phase 2, under the exclusive lock (waited for up to
2 minutes while backups started meanwhile finish), is short: it marks what
was saved meanwhile (a pack planned to go that it uses is kept), then
rewrites the index and deletes. It prints how long it held the exclusive
lock.

Archived WAL is kept from the oldest remaining snapshot's wal_end on: every
range 'pitr ranges' shows afterwards still restores. Records before it go
unless the remaining snapshots hold their chunks anyway (see docs/pitr.md).

Crash safety: new packs, then new index files, then the old index files, then
the old packs; killed at any point, the repository stays valid and the next
prune removes what is left over (docs/repository-format.md, "Prune").`,
		Example: `  memento prune --dry-run
  memento forget --all --keep-daily 14 && memento prune --max-unused 5%`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseMaxUnused(maxUnused)
			if err != nil {
				return err
			}
			f.maxUnused = v
			r, err := a.openFreeing(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := a.runPrune(cmd.Context(), r, f)
			if err != nil {
				if res != nil {
					_ = a.emit(res) // a dry run that met retention: what a real run would meet
				}
				return err
			}
			return a.emit(res)
		},
	}
	c.Flags().BoolVarP(&f.dryRun, "dry-run", "n", false, "only print what would be deleted and repacked, and what S3 Object Lock retention would refuse (then exit 6, as the real run would)")
	c.Flags().StringVar(&maxUnused, "max-unused", "10%", "repack packs whose unused share exceeds this (0%: any unused blob; 100%: never repack)")
	return c
}

// parseMaxUnused reads "10%", "10" (per cent) or "0.5%".
func parseMaxUnused(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, usagef("--max-unused %q: give a percentage from 0%% to 100%%", s)
	}
	return v / 100, nil
}

// runPrune prunes, prints the figures and appends the audit record.
func (a *app) runPrune(ctx context.Context, r *repo.Repository, f pruneFlags) (*maintenance.PruneResult, error) {
	prog := &repo.Progress{}
	stop := a.showProgress("prune", -1, prog)
	res, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{DryRun: f.dryRun, MaxUnused: f.maxUnused, Progress: prog, AfterStep: pruneTestHook()})
	stop()
	if !f.dryRun {
		rec := repo.AuditRecord{Command: "prune"}
		if res != nil {
			rec.Figures = maintenance.PruneFigures(res)
		}
		a.audit(ctx, r, auditResult(rec, err))
	}
	if err != nil {
		if res != nil && res.DryRun && errors.Is(err, repo.ErrRetained) {
			a.printPrune(res)
			return res, err
		}
		return nil, err
	}
	a.printPrune(res)
	return res, nil
}

func (a *app) printPrune(res *maintenance.PruneResult) {
	would := ""
	if res.DryRun {
		would = "would be "
	}
	for _, w := range res.Warnings {
		a.log.Warn(w)
	}
	a.printf("prune: %s %s %s; %s unused\n", plural(res.Snapshots, "snapshot"), english.PluralWord(res.Snapshots, "uses", "use"),
		plural(res.BlobsUsed, "blob"), plural(res.BlobsUnused, "blob"))
	a.printf("packs: %d: %d %sdeleted (unused), %d %srepacked into %d new (%s copied), %d kept\n",
		res.Packs, res.PacksDeleted, would, res.PacksRepacked, would, res.PacksWritten, human(uint64(res.BytesRepacked)), res.PacksKept)
	if res.GroupsRegrouped > 0 {
		a.printf("groups of small files with dead files in packs repacked: %d %sregrouped, %s of live files %smoved into new groups\n",
			res.GroupsRegrouped, would, human(uint64(res.BytesRegrouped)), would)
	}
	for _, w := range res.WAL {
		if w.Dropped == 0 {
			continue
		}
		a.printf("WAL archive of space %s: %s (seq %d..%d) %sdropped, before the oldest snapshot's WAL end (seq %d); %d kept\n",
			w.Space, plural(w.Dropped, "segment"), w.DroppedFirst, w.DroppedLast, would, w.FloorSeq, w.Kept)
	}
	a.printRetained(res.Retained)
	if res.DryRun && len(res.Retained) > 0 {
		a.printf("dry run: %d of the files it would delete %s under retention: a real run would refuse and delete nothing; nothing was changed\n", len(res.Retained), english.PluralWord(len(res.Retained), "is", "are"))
		return
	}
	if res.DryRun {
		a.printf("dry run: about %s would be freed (%s -> %s); nothing was changed\n",
			human(uint64(max(res.BytesFreed, 0))), human(uint64(res.BytesBefore)), human(uint64(res.BytesAfter)))
		return
	}
	a.printf("freed %s in %.1fs (packs %s -> %s); %s unused left in kept packs; %s written, %d deleted\n",
		human(uint64(max(res.BytesFreed, 0))), res.Seconds, human(uint64(res.BytesBefore)), human(uint64(res.BytesAfter)),
		human(uint64(res.UnusedLeft)), plural(res.IndexFilesWritten, "index file"), res.IndexFilesDeleted)
	if ex := res.Exclusive; ex != nil {
		kept := ""
		if ex.PacksKeptBack > 0 {
			kept = fmt.Sprintf("; %s planned to go kept, as what was saved meanwhile uses them", plural(ex.PacksKeptBack, "pack"))
		}
		a.printf("exclusive lock held %.3fs (waited %.3fs): caught up with %s, %s and %s saved meanwhile%s\n",
			ex.Seconds, ex.WaitSeconds, plural(ex.NewSnapshots, "snapshot"), plural(ex.NewIndexFiles, "index file"),
			plural(ex.NewWALFiles, "WAL archive file"), kept)
	}
}

// pruneTestHook is for the crash tests only: with MEMENTO_TEST_PRUNE_KILL_AFTER=N
// the process kills itself (SIGKILL, no cleanup at all) right after prune's
// N-th change to the repository.
func pruneTestHook() func(string) {
	n, err := strconv.Atoi(os.Getenv("MEMENTO_TEST_PRUNE_KILL_AFTER"))
	if err != nil || n <= 0 {
		return nil
	}
	steps := 0
	return func(step string) {
		if steps++; steps >= n {
			fmt.Fprintf(os.Stderr, "memento: test hook: killed after step %d (%s)\n", steps, step)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}
