package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"memento/chunk"
	"memento/engram"
	"memento/repo"
	"memento/repo/verify"
)

type verifyFlags struct {
	level    string
	space    string
	latest   bool
	all      bool
	subset   string
	schedule bool
	tempDir  string
	samples  int
}

func newVerifyCommand(a *app) *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify [SNAPSHOT...] | --space ID [--latest] | --all [--latest]  --level L1|L2|L3|L4 [--subset 10%] | --schedule",
		Short: "Prove snapshots at four depths: manifest, data, Engram structure, recovery",
		Long: `verify proves snapshots at the level asked for (each includes the ones below):

  L1 manifest   signature, structure, sizes, every tree and chunk in the index,
                every pack present with the right size (well under 1 s)
  L2 data       every pack read once, every chunk authenticated and decrypted,
                every file's BLAKE3 recomputed, the keyed BLAKE3 of every
                chunk no file proves checked against its ID
  L3 structure  L2 plus the Engram layout, tiers, WAL magic, CRC32C and chain of
                every segment, and checkpoint.json within the WAL range
  L4 recovery   restore into a temporary directory, replay the WAL, require the
                state digest recorded at backup, run query checks; cleans up

It prints one line per finding and a verdict per snapshot, and records each
verdict in the audit trail ('memento log', 'memento snapshots --verified L2').
Exit code 0 only when everything checked passed; 5 when anything failed.

--subset 10% (or 1/10) makes L2 read one tenth of the packs, the next tenth on
the next run (the rotation is remembered in the repository).

--schedule runs what the policy says is due: L1 on every new snapshot, L2 on the
latest snapshot of each space hourly, L3 on a random 10 % daily, L4 on the
oldest snapshot of each space weekly. Call it from a timer every few minutes.`,
		Example: `  memento verify --all --level L1
  memento verify --all --latest --level L2
  memento verify --space tenant_01 --latest --level L4
  memento verify 1a2b3c4d --level L2 --json
  memento verify --all --level L2 --subset 10%
  memento verify --schedule`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.verify(cmd.Context(), f, args)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.level, "level", "L1", "verification level: L1, L2, L3 or L4")
	fl.StringVar(&f.space, "space", "", "verify snapshots of this space (all of them, or with --latest the newest)")
	fl.BoolVar(&f.latest, "latest", false, "with --space: only the newest snapshot; with --all: the newest snapshot of every space")
	fl.BoolVar(&f.all, "all", false, "verify every snapshot in the repository")
	fl.StringVar(&f.subset, "subset", "", "L2: read only this rotating share of the packs, e.g. 10% or 1/10")
	fl.BoolVar(&f.schedule, "schedule", false, "run what the verification policy says is due now (for a timer)")
	fl.StringVar(&f.tempDir, "temp-dir", "", "L4: restore below this directory (default $TMPDIR)")
	fl.IntVar(&f.samples, "samples", 100, "L4: ids to look up in the replayed state")
	return c
}

// verifyOutput is the --json result.
type verifyOutput struct {
	Passed   bool              `json:"passed"`
	Level    verify.Level      `json:"level,omitempty"`
	Verdicts []*verify.Verdict `json:"verdicts"`
	Tasks    []string          `json:"tasks,omitempty"`
}

func (a *app) verify(ctx context.Context, f verifyFlags, args []string) error {
	if f.schedule {
		if len(args) > 0 || f.all || f.space != "" || f.subset != "" {
			return usagef("--schedule decides what to verify; give no snapshots, --all, --space or --subset")
		}
		return a.verifySchedule(ctx, f)
	}
	level, err := verify.ParseLevel(f.level)
	if err != nil {
		return usagef("%v", err)
	}
	n := 0
	for _, b := range []bool{len(args) > 0, f.all, f.space != ""} {
		if b {
			n++
		}
	}
	switch {
	case n == 0:
		return usagef("name snapshots, or give --space ID [--latest] or --all [--latest]")
	case n > 1:
		return usagef("give snapshots, --space or --all, only one of them")
	case f.latest && f.space == "" && !f.all:
		return usagef("--latest needs --space ID or --all")
	}
	if f.space != "" {
		if err := engram.ValidSpaceID(f.space); err != nil {
			return usagef("%v", err)
		}
	}
	var of int
	if f.subset != "" {
		if level != verify.L2 {
			return usagef("--subset applies to L2 only (L3 and L4 need every byte)")
		}
		if of, err = verify.ParseSubsetShare(f.subset); err != nil {
			return usagef("%v", err)
		}
	}
	r, err := a.openRead(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	ids, err := resolveVerifyTargets(ctx, r, f, args)
	if err != nil {
		return err
	}
	opts := verify.VerifyOptions{Level: level, TempDir: f.tempDir, Samples: f.samples, Progress: &repo.Progress{}}
	if of > 0 {
		recs, _, err := r.AuditLog(ctx, time.Time{})
		if err != nil {
			return err
		}
		opts.Subset = verify.NextSubset(recs, of)
	}
	out := verifyOutput{Passed: true, Level: level}
	stop := a.showProgress("verify "+level.String(), -1, opts.Progress)
	vds, err := verify.VerifySnapshots(ctx, r, ids, opts)
	stop()
	recs := make([]repo.AuditRecord, 0, len(vds))
	for _, vd := range vds {
		a.printVerdict(vd)
		recs = append(recs, verifyRecord(vd, ""))
		out.Passed = out.Passed && vd.Passed
	}
	a.auditAll(ctx, r, recs)
	if err != nil {
		return err
	}
	out.Verdicts = vds
	if err := a.emit(out); err != nil {
		return err
	}
	return verifyError(vds)
}

// resolveVerifyTargets turns arguments into snapshot IDs. Prefixes are
// matched against the manifests in the repository itself, so a snapshot
// whose manifest no longer verifies (and is missing from the catalog) can
// still be named, and is reported rather than "not found".
func resolveVerifyTargets(ctx context.Context, r *repo.Repository, f verifyFlags, args []string) ([]chunk.ID, error) {
	catalog, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if f.space != "" {
		var ids []chunk.ID
		for _, sn := range catalog {
			if sn.Space == f.space {
				ids = append(ids, sn.ID)
			}
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("space %s: %w: no snapshot of this space", f.space, repo.ErrNotFound)
		}
		if f.latest {
			ids = ids[len(ids)-1:]
		}
		return ids, nil
	}
	files, err := r.ListSnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	// Catalog order (oldest first), then manifests the catalog does not hold.
	order := map[chunk.ID]int{}
	for i, sn := range catalog {
		order[sn.ID] = i + 1
	}
	sort.SliceStable(files, func(i, j int) bool {
		oi, oj := order[files[i]], order[files[j]]
		if (oi == 0) != (oj == 0) {
			return oj == 0
		}
		if oi != oj {
			return oi < oj
		}
		return files[i].String() < files[j].String()
	})
	if f.all && f.latest {
		newest, err := r.LatestPerSpace(ctx)
		if err != nil {
			return nil, err
		}
		if len(newest) == 0 {
			return nil, fmt.Errorf("%w: the repository has no space snapshots", repo.ErrNotFound)
		}
		ids := make([]chunk.ID, len(newest))
		for i, sn := range newest {
			ids[i] = sn.ID
		}
		return ids, nil
	}
	if f.all {
		return files, nil
	}
	var ids []chunk.ID
	for _, ref := range args {
		if repo.IsLatestRef(ref) {
			if len(catalog) == 0 {
				return nil, repo.NoSnapshotsError()
			}
			ids = append(ids, catalog[len(catalog)-1].ID)
			continue
		}
		id, err := repo.MatchSnapshotPrefix(ref, files)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// printVerdict prints one line per finding, the notes, and the verdict.
func (a *app) printVerdict(vd *verify.Verdict) {
	for _, f := range vd.Findings {
		a.printf("%s  %s FAIL  %s: %s\n", vd.Short(), f.Level, f.What, oneLine(f.Message))
	}
	if a.verbose || len(vd.Findings) == 0 {
		for _, n := range vd.Notes {
			a.printf("%s  info     %s\n", vd.Short(), n)
		}
	}
	what := "paths"
	if vd.Space != "" {
		what = "space " + vd.Space
	}
	if vd.Passed {
		a.printf("%s  verdict  %s PASSED (%s%s, %.2fs)\n", vd.Short(), vd.Level, what, subsetText(vd.Subset), vd.Seconds)
	} else {
		a.printf("%s  verdict  %s FAILED at %s: %s (%s%s, %.2fs)\n", vd.Short(), vd.Level, vd.FirstLevel(), plural(len(vd.Findings), "finding"), what, subsetText(vd.Subset), vd.Seconds)
	}
}

func subsetText(s string) string {
	if s == "" {
		return ""
	}
	return ", subset " + s
}

// verifyRecord is the audit record of one verdict (verify.Verdict.AuditRecord).
func verifyRecord(vd *verify.Verdict, slot string) repo.AuditRecord { return vd.AuditRecord(slot) }

func verifyError(vds []*verify.Verdict) error {
	failed := 0
	for _, vd := range vds {
		if !vd.Passed {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %s failed verification (findings above)", repo.ErrCorrupt, failed, plural(len(vds), "snapshot"))
	}
	return nil
}

// scheduleCommand is the lock command that marks a running scheduled
// verification, so that a timer firing again while it runs does nothing.
const scheduleCommand = "verify --schedule"

func (a *app) verifySchedule(ctx context.Context, f verifyFlags) error {
	r, err := a.openRead(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	lock, err := r.Lock(ctx, false, scheduleCommand)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	ctx = lock.Context() // cancelled if the lock is lost
	locks, err := r.Locks(ctx)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	for _, l := range locks {
		if !l.Stale && l.Command == scheduleCommand && (l.PID != os.Getpid() || l.Host != host) {
			a.printf("another scheduled verification is running (%s pid %d since %s); nothing to do\n", l.Host, l.PID, l.Time.Format(time.RFC3339))
			return a.emit(verifyOutput{Passed: true, Verdicts: []*verify.Verdict{}})
		}
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	recs, _, err := r.AuditLog(ctx, time.Time{})
	if err != nil {
		return err
	}
	tasks := verify.PlanSchedule(time.Now(), snaps, recs, verify.DefaultSchedule, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)))
	out := verifyOutput{Passed: true, Verdicts: []*verify.Verdict{}}
	if len(tasks) == 0 {
		a.printf("nothing due\n")
	}
	for _, t := range tasks {
		a.printf("due: %s: %s on %s (%s)\n", t.Slot, t.Level, plural(len(t.Snapshots), "snapshot"), t.Reason)
		out.Tasks = append(out.Tasks, fmt.Sprintf("%s %s x%d", t.Slot, t.Level, len(t.Snapshots)))
		opts := verify.VerifyOptions{Level: t.Level, TempDir: f.tempDir, Samples: f.samples}
		vds, err := verify.VerifySnapshots(ctx, r, t.Snapshots, opts)
		for _, vd := range vds {
			a.printVerdict(vd)
			a.audit(ctx, r, verifyRecord(vd, t.Slot))
			out.Passed = out.Passed && vd.Passed
		}
		out.Verdicts = append(out.Verdicts, vds...)
		if err != nil {
			return err
		}
	}
	if err := a.emit(out); err != nil {
		return err
	}
	return verifyError(out.Verdicts)
}
