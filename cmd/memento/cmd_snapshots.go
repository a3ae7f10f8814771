package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/inspect"
)

func newSnapshotsCommand(a *app) *cobra.Command {
	var (
		verified, groupBy string
		latest            int
		flt               inspect.Filter
	)
	c := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots, oldest first",
		Long: `snapshots lists the snapshots, oldest first, selected as restic selects them:
--host and --space are alternatives when repeated, --path must all be
included, and --tag "a,b" needs both tags while repeated --tag are
alternatives. --latest N keeps the N newest of each group (of --group-by;
without it, of each space, and of each host's paths). --group-by
host,paths,tags,space lists the snapshots group by group.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := inspect.ParseGroupBy(groupBy)
			if err != nil {
				return usagef("%v", err)
			}
			if latest < 0 {
				return usagef("--latest %d: want a positive number", latest)
			}
			r, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			all, err := r.Snapshots(cmd.Context())
			if err != nil {
				return err
			}
			out := flt.Select(all)
			if verified != "" {
				if out, err = filterVerified(cmd.Context(), r, out, verified); err != nil {
					return err
				}
			}
			if latest > 0 {
				out = inspect.Latest(keys, out, latest)
			}
			if keys != nil {
				groups := inspect.GroupBy(keys, out)
				if a.jsonOut {
					if groups == nil {
						groups = []inspect.Group{}
					}
					return a.emit(groups)
				}
				for i, g := range groups {
					if i > 0 {
						fmt.Fprintln(a.stdout)
					}
					fmt.Fprintf(a.stdout, "group: %s\n", g.Key)
					if err := a.printSnapshotTable(a.stdout, g.Snapshots); err != nil {
						return err
					}
				}
				return nil
			}
			if a.jsonOut {
				if out == nil {
					out = []*repo.Snapshot{}
				}
				return a.emit(out)
			}
			return a.printSnapshotTable(a.stdout, out)
		},
	}
	addFilterFlags(c, &flt)
	c.Flags().StringVar(&verified, "verified", "", "only snapshots with a passed verification of at least this level (L1..L4) in the audit trail")
	c.Flags().IntVar(&latest, "latest", 0, "only the N newest snapshots of each group")
	c.Flags().StringVar(&groupBy, "group-by", "", "group by these keys: host, paths, tags, space (comma-separated)")
	return c
}

// printSnapshotTable prints snapshots as the snapshots command lists them,
// their times in --tz with the zone (accepted back by --at).
func (a *app) printSnapshotTable(w io.Writer, out []*repo.Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tHOST\tSPACE\tTIMELINE\tTAGS\tFILES\tSIZE\tWAL END")
	for _, sn := range out {
		what := sn.Space
		if what == "" {
			what = "(" + strings.Join(sn.Paths, ",") + ")"
		}
		wal := "-"
		if sn.Engram != nil && sn.Engram.WALEnd.Seq > 0 {
			wal = fmt.Sprintf("seq %d", sn.Engram.WALEnd.Seq)
		}
		// The timeline, and the identity's first 8 hex digits
		// (the identity:, timeline: and original: tags are not repeated).
		tl := "-"
		if sn.Space != "" {
			tl = fmt.Sprintf("%d", sn.Timeline())
			if id := sn.Identity(); id != "" {
				tl += " (" + id[:min(8, len(id))] + ")"
			}
		}
		tags := sn.UserTags()
		for _, t := range sn.Tags {
			if strings.HasPrefix(t, repo.DamageTagPrefix) {
				tags = append(tags, t)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", sn.ShortID(), a.when(sn.Time), sn.Host,
			what, tl, strings.Join(tags, ","), sn.Summary.Files, human(sn.Summary.Bytes), wal)
	}
	fmt.Fprintf(tw, "%s\n", plural(len(out), "snapshot"))
	return tw.Flush()
}
