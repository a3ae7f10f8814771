package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/backend/s3"
	"memento/repo/backup"
	"memento/repo/restore"
	"memento/repo/verify"
	"memento/repo/walarchive"
)

func newLogCommand(a *app) *cobra.Command {
	var since, command, snapshot string
	c := &cobra.Command{
		Use:   "log [--since 24h|7d|TIME] [--command verify] [--snapshot ID]",
		Short: "Show the audit trail: every backup, archive, restore, verify, check, forget and prune",
		Long: `Every backup, WAL archive run, restore, verification, check and prune appends
one immutable, sealed JSON record to <repo>/logs/ (time, host, command,
snapshot, result, figures; wal watch records the sum of its runs, see its
help). log prints them oldest first, times in the --tz zone with its offset,
integer figures exactly and bytes in IEC units (MiB); --json prints the
records as stored. A record that cannot be written is a warning, never a
failure of the command; when the repository's file system is full or its
endpoint cannot be reached and the command failed for that too, its error
line says how many records it could not write.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var from time.Time
			if since != "" {
				var err error
				if from, err = a.parseInstant("--since", since, true); err != nil {
					return err
				}
			}
			r, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			recs, bad, err := r.AuditLog(cmd.Context(), from)
			if err != nil {
				return err
			}
			var out []repo.AuditRecord
			for _, rec := range recs {
				if (command == "" || rec.Command == command) && (snapshot == "" || strings.HasPrefix(rec.Snapshot, strings.ToLower(snapshot))) {
					out = append(out, rec)
				}
			}
			for _, e := range bad {
				a.log.Warn("audit record does not verify", "err", e)
			}
			if a.jsonOut {
				if out == nil {
					out = []repo.AuditRecord{}
				}
				return a.emit(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tHOST\tCOMMAND\tSNAPSHOT\tSPACE\tLEVEL\tRESULT\tDETAILS")
			for _, rec := range out {
				snap := rec.Snapshot
				if len(snap) > 8 {
					snap = snap[:8]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.when(rec.Time), rec.Host, rec.Command,
					dash(snap), dash(rec.Space), dash(rec.Level+subsetSuffix(rec.Subset)), rec.Result, auditDetails(rec))
			}
			fmt.Fprintf(tw, "%s\n", plural(len(out), "record"))
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&since, "since", "", "only records from this long ago (24h, 7d) or since this time (any form restore --at takes: 2026-12-05, 2h ago, RFC 3339)")
	c.Flags().StringVar(&command, "command", "", "only records of this command (backup, archive, restore, verify, check, forget, prune, replicate)")
	c.Flags().StringVar(&snapshot, "snapshot", "", "only records of this snapshot (ID prefix)")
	return c
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func subsetSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// auditDetails summarises a record's error or figures on one line.
func auditDetails(rec repo.AuditRecord) string {
	if rec.Error != "" {
		return oneLine(rec.Error)
	}
	keys := make([]string, 0, len(rec.Figures))
	for k := range rec.Figures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+figureText(k, rec.Figures[k]))
	}
	return strings.Join(parts, " ")
}

// figureText prints a figure for people: integers exactly, bytes in IEC
// units as everywhere (121.7 MiB, without the space so that k=v stays one
// word), other floats to 6 significant digits without an exponent.
func figureText(k string, f repo.Figure) string {
	switch {
	case f.IsInt() && (k == "bytes" || strings.HasSuffix(k, "_bytes") || strings.HasPrefix(k, "bytes_")):
		return strings.ReplaceAll(humanize.IBytes(f.Uint64()), " ", "")
	case f.IsInt():
		return f.String()
	}
	g, _ := strconv.ParseFloat(strconv.FormatFloat(f.Float64(), 'g', 6, 64), 64)
	return strconv.FormatFloat(g, 'f', -1, 64)
}

// audit appends a record to the repository's audit trail. A failure to
// record is logged, never fatal: the operation itself already happened.
// A record lost to the repository itself (auditLostCause: a full file
// system, an endpoint that cannot be reached) is not logged here but
// counted (auditLost), for the command's last word (run, noteAuditLost):
// one line, not a warning per space repeating the error of the command
// itself.
//
// For a command that ends; wal watch, which runs for hours, uses auditNow.
func (a *app) audit(ctx context.Context, r *repo.Repository, rec repo.AuditRecord) {
	err := a.appendAudit(ctx, r, rec)
	if err == nil {
		return
	}
	if cause := auditLostCause(err); cause != nil {
		a.auditMu.Lock()
		counted := a.auditLost == 0 || errors.Is(err, a.auditLostCause)
		if a.auditLost == 0 {
			a.auditLostErr, a.auditLostCause = err, cause
		}
		if counted {
			a.auditLost++
		}
		a.auditMu.Unlock()
		if counted {
			return
		}
	}
	if a.log != nil {
		a.log.Warn("could not append to the audit trail", "command", rec.Command, "err", err)
	}
}

// auditNow is audit for a process that runs for hours (wal watch): every
// record it cannot write is a warning at once, not held for an end hours
// away.
func (a *app) auditNow(ctx context.Context, r *repo.Repository, rec repo.AuditRecord) {
	if err := a.appendAudit(ctx, r, rec); err != nil && a.log != nil {
		a.log.Warn("could not append to the audit trail", "command", rec.Command, "err", err)
	}
}

// appendAudit appends rec unless the repository is read-only.
func (a *app) appendAudit(ctx context.Context, r *repo.Repository, rec repo.AuditRecord) error {
	if r.ReadOnlyStorage() {
		if a.log != nil {
			a.log.Debug("the repository is read-only; not recorded in the audit trail", "command", rec.Command)
		}
		return nil
	}
	_, err := r.AppendAudit(context.WithoutCancel(ctx), rec)
	return err
}

// auditLostCause returns the failure of the repository itself behind err,
// one the command's own error says too when it ran into it (ENOSPC: the
// file system is full; s3.ErrUnreachable: the endpoint cannot be reached,
// a network partition), or nil.
func auditLostCause(err error) error {
	for _, c := range []error{syscall.ENOSPC, s3.ErrUnreachable} {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}

// noteAuditLost tells of the audit records the repository itself kept out
// of the trail (audit), once the command has ended with err: as part of
// its error line when that already names the same cause (the file system
// is full, the endpoint unreachable), else as one warning. It returns the
// error to print.
func (a *app) noteAuditLost(err error) error {
	a.auditMu.Lock()
	n, first, cause := a.auditLost, a.auditLostErr, a.auditLostCause
	a.auditMu.Unlock()
	if n == 0 {
		return err
	}
	if err != nil && errors.Is(err, cause) {
		return fmt.Errorf("%w; %s not written either", err, fmt.Sprintf("%d audit record%s", n, map[bool]string{true: "", false: "s"}[n == 1]))
	}
	if a.log != nil {
		a.log.Warn("could not append to the audit trail", "records", n, "err", first)
	}
	return err
}

// auditAll appends recs to the audit trail, several at once: each record
// is a file of its own, written with two fsyncs, and `verify --all` of
// three spaces ended waiting for six fsyncs one after the other (5-15 ms
// each on the bench's VM, 70-130 ms beside other writers). Their times are
// set first, in the order given, so that the trail lists them in that
// order as before.
func (a *app) auditAll(ctx context.Context, r *repo.Repository, recs []repo.AuditRecord) {
	now := time.Now().UTC()
	sem := make(chan struct{}, auditWrites)
	var wg sync.WaitGroup
	for i := range recs {
		if recs[i].Time.IsZero() {
			recs[i].Time = now.Add(time.Duration(i))
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			a.audit(ctx, r, recs[i])
		}()
	}
	wg.Wait()
}

// auditWrites bounds the records auditAll writes at once.
const auditWrites = 8

// auditResult fills Result and Error from err.
func auditResult(rec repo.AuditRecord, err error) repo.AuditRecord {
	if err != nil {
		rec.Result, rec.Error = repo.AuditFailed, err.Error()
	} else {
		rec.Result = repo.AuditOK
	}
	return rec
}

// auditBackup records one snapshot's backup (or a failed one).
func (a *app) auditBackup(ctx context.Context, r *repo.Repository, opts backup.BackupOptions, sn *repo.Snapshot, err error) {
	rec := repo.AuditRecord{Command: "backup", Space: opts.Space}
	if sn != nil {
		s := sn.Summary
		rec.Snapshot = sn.ID.String()
		rec.Figures = repo.Figures{"files": repo.Int(s.Files), "bytes": repo.Int(s.Bytes), "new_bytes": repo.Int(s.NewBytes),
			"stored_bytes": repo.Int(s.StoredBytes), "seconds": repo.Float(s.Seconds)}
		if sn.Engram != nil {
			rec.Figures["wal_end_seq"] = repo.Int(sn.Engram.WALEnd.Seq)
		}
	}
	a.audit(ctx, r, auditResult(rec, err))
}

// auditRestore records a restore.
func (a *app) auditRestore(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, res *restore.RestoreResult, err error) {
	rec := repo.AuditRecord{Command: "restore", Snapshot: sn.ID.String(), Space: sn.Space}
	if res != nil {
		rec.Figures = repo.Figures{"files": repo.Int(res.Files), "bytes": repo.Int(res.Bytes), "seconds": repo.Float(res.Seconds)}
	}
	a.audit(ctx, r, auditResult(rec, err))
}

// auditArchive records one space's `wal archive` run. `wal watch` records
// sums of runs instead (wal_watch_audit.go): a record per run would be a
// file a second.
func (a *app) auditArchive(ctx context.Context, r *repo.Repository, space string, res *walarchive.WALArchiveResult, err error) {
	rec := repo.AuditRecord{Command: "archive", Space: space}
	if res != nil {
		rec.Figures = repo.Figures{"segments": repo.Int(res.Segments), "new_bytes": repo.Int(res.NewBytes),
			"stored_bytes": repo.Int(res.StoredBytes), "last_seq": repo.Int(res.LastSeq), "seconds": repo.Float(res.Seconds)}
	}
	a.audit(ctx, r, auditResult(rec, err))
}

// auditPITR records a point-in-time restore of one space to target.
func (a *app) auditPITR(ctx context.Context, r *repo.Repository, space, target string, res *restore.PITRResult, err error) {
	rec := repo.AuditRecord{Command: "restore", Space: space}
	if res != nil {
		rec.Snapshot = res.Snapshot
		rec.Figures = repo.Figures{"seq": repo.Int(res.Seq), "timestamp_ns": repo.Int(res.TimestampNS),
			"archived_segments": repo.Int(res.ArchivedSegments), "seconds": repo.Float(res.Seconds)}
	}
	if err != nil {
		err = fmt.Errorf("point in time %s: %w", target, err)
	}
	a.audit(ctx, r, auditResult(rec, err))
}

// filterVerified keeps the snapshots with a passed verification of at least
// level in the audit trail (`snapshots --verified L2`).
func filterVerified(ctx context.Context, r *repo.Repository, sns []*repo.Snapshot, level string) ([]*repo.Snapshot, error) {
	l, err := verify.ParseLevel(level)
	if err != nil {
		return nil, usagef("--verified: %v", err)
	}
	recs, _, err := r.AuditLog(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	got := verify.SnapshotLevels(recs, sns)
	var out []*repo.Snapshot
	for _, sn := range sns {
		if got[sn.ID.String()] >= l {
			out = append(out, sn)
		}
	}
	return out, nil
}
