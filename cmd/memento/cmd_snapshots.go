package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"memento/repo"
)

func newSnapshotsCommand(a *app) *cobra.Command {
	var space, host, tag, verified string
	c := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			all, err := r.Snapshots(cmd.Context())
			if err != nil {
				return err
			}
			var out []*repo.Snapshot
			for _, sn := range all {
				if (space == "" || sn.Space == space) && (host == "" || sn.Host == host) && (tag == "" || slices.Contains(sn.Tags, tag)) {
					out = append(out, sn)
				}
			}
			if verified != "" {
				if out, err = filterVerified(cmd.Context(), r, out, verified); err != nil {
					return err
				}
			}
			if a.jsonOut {
				if out == nil {
					out = []*repo.Snapshot{}
				}
				return a.emit(out)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
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
				// (the identity: and timeline: tags are not repeated).
				tl, tags := "-", make([]string, 0, len(sn.Tags))
				if sn.Space != "" {
					tl = fmt.Sprintf("%d", sn.Timeline())
					if id := sn.Identity(); id != "" {
						tl += " (" + id[:min(8, len(id))] + ")"
					}
				}
				for _, t := range sn.Tags {
					if !strings.HasPrefix(t, repo.IdentityTagPrefix) && !strings.HasPrefix(t, repo.TimelineTagPrefix) {
						tags = append(tags, t)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", sn.ShortID(), a.when(sn.Time), sn.Host,
					what, tl, strings.Join(tags, ","), sn.Summary.Files, human(sn.Summary.Bytes), wal)
			}
			fmt.Fprintf(tw, "%d snapshots\n", len(out))
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&space, "space", "", "only snapshots of this space")
	c.Flags().StringVar(&host, "host", "", "only snapshots from this host")
	c.Flags().StringVar(&tag, "tag", "", "only snapshots with this tag")
	c.Flags().StringVar(&verified, "verified", "", "only snapshots with a passed verification of at least this level (L1..L4) in the audit trail")
	return c
}
