package main

import (
	"context"
	"fmt"

	"github.com/dustin/go-humanize/english"
	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/maintenance"
)

func newCheckCommand(a *app) *cobra.Command {
	var readData, repair bool
	c := &cobra.Command{
		Use:   "check [--read-data] [--repair]",
		Short: "Check the whole repository's consistency, and repair the index",
		Long: `check verifies the repository as a whole: every file is where its name says and
key and archive files hash to their names; the index files agree with the packs'
own headers (no pack missing, truncated or unindexed); every snapshot's manifest
verifies and its trees and chunks resolve (a delta or member blob a snapshot
uses must name a base or group some pack holds whole: formats 4 and 6); the
audit trail verifies and no snapshot vanished without a prune; stale locks are
reported.

--read-data also reads every pack whole: its BLAKE3 against its name, and every
blob in it decrypted and checked, whether a snapshot uses it or not.

--repair (exclusive lock) rebuilds the local index and the repository's index
files from the packs themselves, and marks snapshots whose data is really gone
as damaged (an immutable file under damaged/) instead of deleting them,
printing what could not be saved. It never deletes a pack or a snapshot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.check(cmd.Context(), readData, repair)
		},
	}
	c.Flags().BoolVar(&readData, "read-data", false, "read and verify every pack and blob")
	c.Flags().BoolVar(&repair, "repair", false, "rebuild the index from the packs and mark damaged snapshots")
	return c
}

func (a *app) check(ctx context.Context, readData, repair bool) error {
	// A damaged index file does not stop Open (it is skipped with a warning);
	// the check reports it and --repair replaces it.
	open := a.openRead
	if repair {
		open = a.open
	}
	r, err := open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	prog := &repo.Progress{}
	stop := a.showProgress("check", -1, prog)
	rep, err := maintenance.Check(ctx, r, maintenance.CheckOptions{ReadData: readData, Repair: repair, Progress: prog})
	stop()
	command := "check"
	if repair {
		command = "repair"
	}
	if err != nil {
		a.audit(ctx, r, auditResult(repo.AuditRecord{Command: command}, err))
		return err
	}
	warnings := 0
	for _, f := range rep.Findings {
		if f.Severity == maintenance.SevWarning {
			warnings++
		}
		a.printf("%-7s  %s: %s\n", f.Severity, f.What, oneLine(f.Message))
	}
	if rr := rep.Repair; rr != nil {
		a.printf("repair: index rebuilt from %s (%s); %s written, %d old %s replaced; %s left in place\n",
			plural(int(rr.Packs), "pack"), plural(int(rr.Blobs), "blob"), plural(int(rr.IndexWritten), "index file"),
			rr.IndexRemoved, english.PluralWord(int(rr.IndexRemoved), "one", "ones"), plural(len(rr.Unreadable), "unreadable pack"))
		for _, u := range rr.Unreadable {
			a.printf("repair: unreadable pack: %s\n", oneLine(u))
		}
	}
	for _, d := range rep.Damaged {
		space := ""
		if d.Space != "" {
			space = " (space " + d.Space + ")"
		}
		state := "damaged"
		if d.File != "" {
			state = "marked damaged in " + d.File
		}
		a.printf("snapshot %.8s%s %s: could not be saved: %d of %s (%s), %s\n", d.Snapshot, space, state,
			len(d.LostFiles)-d.LostDirs, plural(int(d.TotalFiles), "file"), human(d.LostBytes), plural(d.LostDirs, "whole directory"))
		for i, f := range d.LostFiles {
			if i == 50 && !a.verbose {
				a.printf("    ... and %d more (--json or --verbose lists them all)\n", len(d.LostFiles)-50)
				break
			}
			a.printf("    lost: %s\n", f)
		}
	}
	a.printf("check: %s, %s; %s, %s, %s (%.0f intact)\n",
		plural(rep.Errors(), "error"), plural(warnings, "warning"), plural(int(rep.Figures["packs"]), "pack"),
		plural(int(rep.Figures["index_files"]), "index file"), plural(int(rep.Figures["snapshots"]), "snapshot"), rep.Figures["snapshots_intact"])
	var cerr error
	if rep.Errors() > 0 {
		cerr = fmt.Errorf("%w: check found %s (listed above)", repo.ErrCorrupt, plural(rep.Errors(), "error"))
	}
	rec := auditResult(repo.AuditRecord{Command: command, Figures: repo.FiguresOf(rep.Figures)}, cerr)
	a.audit(ctx, r, rec)
	if err := a.emit(rep); err != nil {
		return err
	}
	return cerr
}
