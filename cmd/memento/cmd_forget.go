package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/dustin/go-humanize/english"
	"github.com/spf13/cobra"

	"memento/engram"
	"memento/repo"
	"memento/repo/maintenance"
)

type forgetFlags struct {
	spaces        []string
	all           bool
	policy        maintenance.RetentionPolicy
	within        string
	forgetDamaged bool
	allowEmpty    bool
	dryRun        bool
	prune         bool
	maxUnused     string
}

func newForgetCommand(a *app) *cobra.Command {
	var f forgetFlags
	c := &cobra.Command{
		Use:   "forget [SNAPSHOT...] [--space ID... | --all] [--keep-last N] [--keep-daily N] ... [--dry-run] [--prune]",
		Short: "Remove snapshots by ID or by a retention policy (data goes with prune)",
		Long: `forget removes snapshots: either the ones named, or, per group, those a
retention policy does not keep. A group is a space (whichever host backed it
up), or the plain path snapshots of one host and set of paths. Removing a
snapshot deletes its manifest and nothing else; 'memento prune' (or --prune)
then deletes the data no remaining snapshot uses.

The rules are restic's and combine (a snapshot is kept if any rule keeps it):
--keep-last N the N newest; --keep-hourly/daily/weekly/monthly/yearly N the
newest snapshot of each of the N newest hours/days/ISO weeks/months/years that
have snapshots (local time); --keep-within 7d|2w|1y6m|36h everything taken less
than that before the group's newest snapshot; --keep-tag T every snapshot tagged
T. N = -1 means unlimited. The output says which rule kept each snapshot.

Safety: a policy needs --space or --all; an empty policy is an error; a group
never loses its last snapshot without --allow-empty. Snapshots marked damaged
by 'check --repair' do not count towards any rule and are kept (what is left
of them may matter) unless --forget-damaged. Each removal is first written to
the audit trail, so 'check' knows the snapshot was forgotten, not lost.
forget and tag take turns (the manifest lock, shared with backups and
restores): one waits up to 2 minutes for the other, then reads the
snapshots as the other left them.`,
		Example: `  memento forget --all --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --dry-run
  memento forget --space tenant_01 --keep-within 30d --keep-tag release --prune
  memento forget 3fa2c1d0 9b8a7c6d`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.forget(cmd.Context(), f, args)
		},
	}
	fl := c.Flags()
	fl.StringSliceVar(&f.spaces, "space", nil, "apply the policy to this space (repeatable)")
	fl.BoolVar(&f.all, "all", false, "apply the policy to every space and every host's path snapshots")
	fl.IntVar(&f.policy.Last, "keep-last", 0, "keep the N newest snapshots")
	fl.IntVar(&f.policy.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the N newest hours")
	fl.IntVar(&f.policy.Daily, "keep-daily", 0, "keep the newest snapshot of each of the N newest days")
	fl.IntVar(&f.policy.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the N newest ISO weeks")
	fl.IntVar(&f.policy.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the N newest months")
	fl.IntVar(&f.policy.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the N newest years")
	fl.IntVar(&f.policy.Min, "keep-min", 0, "always keep at least the N newest snapshots of each group (a floor under the other rules)")
	fl.StringVar(&f.within, "keep-within", "", "keep snapshots taken less than this before the newest one (7d, 2w, 1y6m, 36h)")
	fl.StringSliceVar(&f.policy.Tags, "keep-tag", nil, "keep snapshots with this tag (repeatable)")
	fl.BoolVar(&f.forgetDamaged, "forget-damaged", false, "also remove snapshots marked damaged by check --repair")
	fl.BoolVar(&f.allowEmpty, "allow-empty", false, "allow removing the last snapshot of a space or of a host's paths")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "only print what would be removed, and what S3 Object Lock retention would refuse (then exit 6, as the real run would)")
	fl.BoolVar(&f.prune, "prune", false, "run 'memento prune' afterwards")
	fl.StringVar(&f.maxUnused, "max-unused", "10%", "with --prune: unused share of a pack above which it is repacked")
	return c
}

// forgetJSON is forget's --json output; Prune is set with --prune.
type forgetJSON struct {
	*maintenance.ForgetResult
	Prune *maintenance.PruneResult `json:"prune,omitempty"`
}

func (a *app) forget(ctx context.Context, f forgetFlags, ids []string) error {
	if f.within != "" {
		w, err := maintenance.ParseKeepWithin(f.within)
		if err != nil {
			return usagef("%v", err)
		}
		f.policy.Within = w
	}
	maxUnused, err := parseMaxUnused(f.maxUnused)
	if err != nil {
		return err
	}
	switch {
	case len(ids) > 0 && !f.policy.Empty():
		return usagef("give snapshot IDs or a policy, not both")
	case len(ids) > 0 && (len(f.spaces) > 0 || f.all):
		return usagef("--space and --all select snapshots for a policy; with snapshot IDs, leave them out")
	case len(ids) == 0 && f.policy.Empty():
		return usagef("nothing to forget: give snapshot IDs or a policy (--keep-last, --keep-daily, ..., --keep-within, --keep-tag); an empty policy would remove every snapshot")
	case len(ids) == 0 && len(f.spaces) == 0 && !f.all:
		return usagef("say which snapshots the policy applies to: --space ID (repeatable) or --all")
	case len(f.spaces) > 0 && f.all:
		return usagef("give either --space or --all, not both")
	}
	if err := f.policy.Validate(); err != nil {
		return usagef("%v", err)
	}
	for _, s := range f.spaces {
		if err := engram.ValidSpaceID(s); err != nil {
			return usagef("%v", err)
		}
	}
	r, err := a.openFreeing(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	res, err := maintenance.Forget(ctx, r, maintenance.ForgetOptions{IDs: ids, Policy: f.policy, Spaces: f.spaces, All: f.all,
		ForgetDamaged: f.forgetDamaged, AllowEmpty: f.allowEmpty, DryRun: f.dryRun, Location: time.Local})
	if err != nil && errors.Is(err, maintenance.ErrWouldEmpty) {
		err = &usageError{err.Error()}
	}
	if res != nil {
		a.printForget(res)
	}
	if err != nil {
		if res != nil && res.DryRun && errors.Is(err, repo.ErrRetained) {
			_ = a.emit(forgetJSON{ForgetResult: res}) // what a real run would meet, with the exit code it would have
		}
		return err
	}
	out := forgetJSON{ForgetResult: res}
	if f.prune && !f.dryRun {
		pres, err := a.runPrune(ctx, r, pruneFlags{maxUnused: maxUnused})
		if err != nil {
			return err
		}
		out.Prune = pres
	}
	return a.emit(out)
}

func (a *app) printForget(res *maintenance.ForgetResult) {
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	if res.Policy != "" {
		a.printf("policy: %s\n", res.Policy)
	}
	for _, g := range res.Groups {
		a.printf("%s: keep %d, %s %d\n", g.Name(), len(g.Keep), verb, len(g.Remove))
		for _, it := range g.Keep {
			a.printf("  keep    %.8s  %s  %-12s %s\n", it.ID, a.when(it.Time), it.Host, strings.Join(it.Reasons, ", "))
		}
		for _, it := range g.Remove {
			d := ""
			if it.Damaged {
				d = "damaged"
			}
			a.printf("  remove  %.8s  %s  %-12s %s\n", it.ID, a.when(it.Time), it.Host, d)
		}
	}
	n := 0
	for _, g := range res.Groups {
		n += len(g.Remove)
	}
	a.printRetained(res.Retained)
	switch {
	case res.DryRun && len(res.Retained) > 0:
		a.printf("dry run: %s would be removed, but %d of them %s under retention: a real run would refuse and remove nothing; nothing was changed\n",
			plural(n, "snapshot"), len(res.Retained), english.PluralWord(len(res.Retained), "is", "are"))
	case res.DryRun:
		a.printf("dry run: %s would be removed; nothing was changed\n", plural(n, "snapshot"))
	case n > 0:
		a.printf("%s removed; run 'memento prune' to free %s data\n", plural(len(res.Removed), "snapshot"), english.PluralWord(len(res.Removed), "its", "their"))
	default:
		a.printf("nothing to remove\n")
	}
}

// printRetained lists the files a dry run found under retention (S3 Object
// Lock): a real run would refuse.
func (a *app) printRetained(files []repo.RetainedFile) {
	for _, f := range files {
		a.printf("  retained  %s  until %s  (S3 Object Lock, %s)\n", f.Name, f.Until.UTC().Format(time.RFC3339), f.Mode)
	}
}
