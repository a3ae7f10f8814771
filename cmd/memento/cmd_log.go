package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"memento/repo"
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
snapshot, result, figures). log prints them oldest first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return usagef("%v", err)
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
				fmt.Fprintf(a.stderr, "memento: warning: audit record does not verify: %v\n", e)
			}
			if a.jsonOut {
				if out == nil {
					out = []repo.AuditRecord{}
				}
				return a.emit(out)
			}
			if a.quiet {
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tHOST\tCOMMAND\tSNAPSHOT\tSPACE\tLEVEL\tRESULT\tDETAILS")
			for _, rec := range out {
				snap := rec.Snapshot
				if len(snap) > 8 {
					snap = snap[:8]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rec.Time.Local().Format(time.DateTime), rec.Host, rec.Command,
					dash(snap), dash(rec.Space), dash(rec.Level+subsetSuffix(rec.Subset)), rec.Result, auditDetails(rec))
			}
			fmt.Fprintf(tw, "%d records\n", len(out))
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&since, "since", "", "only records from this long ago (24h, 7d) or since this time (RFC 3339)")
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
		parts = append(parts, k+"="+strconv.FormatFloat(rec.Figures[k], 'g', 6, 64))
	}
	return strings.Join(parts, " ")
}

// parseSince reads "24h", "7d", "90m" or an RFC 3339 time; "" means all.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h, 7d) or an RFC 3339 time", s)
}

// audit appends a record to the repository's audit trail. A failure to
// record is logged, never fatal: the operation itself already happened.
func (a *app) audit(ctx context.Context, r *repo.Repository, rec repo.AuditRecord) {
	if r.ReadOnlyStorage() {
		if a.log != nil {
			a.log.Debug("the repository is read-only; not recorded in the audit trail", "command", rec.Command)
		}
		return
	}
	if _, err := r.AppendAudit(context.WithoutCancel(ctx), rec); err != nil && a.log != nil {
		a.log.Warn("could not append to the audit trail", "command", rec.Command, "err", err)
	}
}

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
		rec.Figures = map[string]float64{"files": float64(s.Files), "bytes": float64(s.Bytes), "new_bytes": float64(s.NewBytes),
			"stored_bytes": float64(s.StoredBytes), "seconds": s.Seconds}
		if sn.Engram != nil {
			rec.Figures["wal_end_seq"] = float64(sn.Engram.WALEnd.Seq)
		}
	}
	a.audit(ctx, r, auditResult(rec, err))
}

// auditRestore records a restore.
func (a *app) auditRestore(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, res *restore.RestoreResult, err error) {
	rec := repo.AuditRecord{Command: "restore", Snapshot: sn.ID.String(), Space: sn.Space}
	if res != nil {
		rec.Figures = map[string]float64{"files": float64(res.Files), "bytes": float64(res.Bytes), "seconds": res.Seconds}
	}
	a.audit(ctx, r, auditResult(rec, err))
}

// auditArchive records one space's `wal archive` run. `wal watch` does not
// call it: one record per run would be a file a second.
func (a *app) auditArchive(ctx context.Context, r *repo.Repository, space string, res *walarchive.WALArchiveResult, err error) {
	rec := repo.AuditRecord{Command: "archive", Space: space}
	if res != nil {
		rec.Figures = map[string]float64{"segments": float64(res.Segments), "new_bytes": float64(res.NewBytes),
			"stored_bytes": float64(res.StoredBytes), "last_seq": float64(res.LastSeq), "seconds": res.Seconds}
	}
	a.audit(ctx, r, auditResult(rec, err))
}

// auditPITR records a point-in-time restore of one space to target.
func (a *app) auditPITR(ctx context.Context, r *repo.Repository, space, target string, res *restore.PITRResult, err error) {
	rec := repo.AuditRecord{Command: "restore", Space: space}
	if res != nil {
		rec.Snapshot = res.Snapshot
		rec.Figures = map[string]float64{"seq": float64(res.Seq), "timestamp_ns": float64(res.TimestampNS),
			"archived_segments": float64(res.ArchivedSegments), "seconds": res.Seconds}
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
	got := verify.VerifiedLevels(recs)
	var out []*repo.Snapshot
	for _, sn := range sns {
		if got[sn.ID.String()] >= l {
			out = append(out, sn)
		}
	}
	return out, nil
}
