package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"memento/repo/inspect"
	"memento/repo/pitr"
	"memento/repo/restore"
	"memento/repo/walarchive"
)

func newInfoCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "One screen about the repository: every space's snapshots, recoverable WAL range, timelines and verification",
		Long: `info shows, as pgBackRest's info does, the repository (location, id, format
version, packs, stored size, snapshots), then every space: its snapshots
(count, oldest, newest), the databases that have it and, per timeline, the
archived WAL and the first and last recoverable instants, the last
verification recorded in the audit trail and how many snapshots passed one;
then the snapshots of plain paths. It reads only metadata (catalog, index,
WAL archive and history records, audit trail), never data.

--json prints one object whose schema is versioned ("version": 1) and only
grows: repository{location,id,format_version,created,encryption,packs,
stored_bytes,snapshots}, spaces[]{space,snapshots,oldest,newest,newest_id,
newest_bytes,stored_bytes,packs,databases[]{identity,host,timelines[]{
timeline,parent,fork_seq,archived_through,ranges[],first_recoverable_ns,
last_recoverable_ns}},verified_snapshots,last_verification{time,snapshot,
level,result,error}}, paths{snapshots,oldest,newest,stored_bytes,packs},
problems[].`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			info, err := inspect.GatherInfo(cmd.Context(), r, pitr.NewPlanner(restore.Fetcher(r)))
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.emit(info)
			}
			printInfo(a, info)
			return nil
		},
	}
}

func fmtTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

func fmtNS(ns int64) string { return fmtTime(time.Unix(0, ns).UTC()) }

func printInfo(a *app, info *inspect.Info) {
	ri := info.Repository
	a.printf("repository %s\n", ri.Location)
	a.printf("  id %s, format version %d, encryption %s, created %s\n", ri.ID, ri.FormatVersion, ri.Encryption, fmtTime(ri.Created))
	a.printf("  %s, %s, %s stored (%d bytes)\n", plural(int(ri.Snapshots), "snapshot"), plural(int(ri.Packs), "pack"), human(uint64(ri.StoredBytes)), ri.StoredBytes)
	for _, s := range info.Spaces {
		a.printf("\nspace %s\n", s.Space)
		if s.Snapshots > 0 {
			a.printf("  snapshots: %d, oldest %s, newest %s (%.8s, %s)\n", s.Snapshots, fmtTime(*s.Oldest), fmtTime(*s.Newest), s.NewestID, human(s.NewestBytes))
		} else {
			a.printf("  snapshots: none\n")
		}
		a.printf("  stored: %s in %s\n", human(uint64(s.StoredBytes)), plural(int(s.Packs), "pack"))
		for _, db := range s.Databases {
			a.printf("  database %s", walarchive.IdentityLabel(db.Identity))
			if db.Host != "" {
				a.printf(" (host %s)", db.Host)
			}
			a.printf("\n")
			for _, tl := range db.Timelines {
				head := fmt.Sprintf("timeline %d", tl.Timeline)
				if tl.Parent > 0 {
					head += fmt.Sprintf(" (from timeline %d at seq %d)", tl.Parent, tl.ForkSeq)
				}
				wal := "no WAL archived"
				if tl.ArchivedThrough > 0 {
					wal = fmt.Sprintf("WAL archived through seq %d", tl.ArchivedThrough)
				}
				if len(tl.Ranges) == 0 {
					a.printf("    %s: %s; nothing recoverable\n", head, wal)
					continue
				}
				a.printf("    %s: %s; recoverable %s .. %s (%s)\n", head, wal, fmtNS(tl.FirstRecoverable), fmtNS(tl.LastRecoverable), plural(len(tl.Ranges), "range"))
			}
		}
		v := fmt.Sprintf("%d of %s verified", s.VerifiedSnapshots, plural(int(s.Snapshots), "snapshot"))
		if lv := s.LastVerification; lv != nil {
			v += fmt.Sprintf("; last: %s %s at %s (snapshot %.8s)", dash(lv.Level), lv.Result, fmtTime(lv.Time), lv.Snapshot)
			if lv.Error != "" {
				v += ": " + lv.Error
			}
		} else {
			v += "; never verified"
		}
		a.printf("  verification: %s\n", v)
	}
	if p := info.Paths; p != nil {
		a.printf("\nplain paths\n  snapshots: %d, oldest %s, newest %s\n  stored: %s in %s\n", p.Snapshots, fmtTime(*p.Oldest), fmtTime(*p.Newest), human(uint64(p.StoredBytes)), plural(int(p.Packs), "pack"))
	}
	for _, pr := range info.Problems {
		a.printf("\nproblem: %s\n", pr)
	}
}
