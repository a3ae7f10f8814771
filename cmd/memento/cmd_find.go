package main

import (
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/inspect"
)

func newFindCommand(a *app) *cobra.Command {
	var (
		snaps []string
		under string
		flt   inspect.Filter
	)
	c := &cobra.Command{
		Use:   "find PATTERN...",
		Short: "Find files by name or path pattern across snapshots, newest snapshot first",
		Long: `find lists the paths matching any PATTERN in every snapshot (or those given
with --snapshot, or selected with --host/--space/--tag/--path), newest
snapshot first: snapshot, its time, type, size, mtime and path. A pattern
without '/' matches base names ("*.go"); one with '/' matches the whole path
as 'memento ls' shows it ("/src/net/*"). Patterns use shell glob syntax
(*, ?, [a-z]); quote them so the shell does not expand them.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := inspect.CheckPatterns(args); err != nil {
				return usagef("%v", err)
			}
			ctx := cmd.Context()
			r, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			sns, err := selectSnapshots(cmd, r, snaps, flt)
			if err != nil {
				return err
			}
			slices.Reverse(sns) // newest first
			out := []inspect.Match{}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			if !a.jsonOut && !a.quiet {
				fmt.Fprintln(tw, "SNAPSHOT\tSNAPSHOT TIME\tTYPE\tSIZE\tMTIME\tPATH")
			}
			n := 0
			err = inspect.Find(ctx, r, sns, inspect.FindOptions{Patterns: args, Under: under}, func(m inspect.Match) error {
				n++
				if a.jsonOut {
					out = append(out, m)
					return nil
				}
				if !a.quiet {
					fmt.Fprintf(tw, "%.8s\t%s\t%s\t%d\t%s\t%s\n", m.Snapshot, m.Time.Format(time.RFC3339Nano), m.Type, m.Size, m.MTime.Format(time.RFC3339Nano), m.Path)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.emit(out)
			}
			if !a.quiet {
				fmt.Fprintf(tw, "%s in %s\n", plural(n, "match"), plural(len(sns), "snapshot"))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringArrayVar(&snaps, "snapshot", nil, "look only in this snapshot (ID, prefix or latest; repeatable)")
	c.Flags().StringVar(&under, "under", "", "look only below this directory of each snapshot")
	addFilterFlags(c, &flt)
	return c
}

// addFilterFlags adds the snapshot selection flags restic users know:
// repeated flags are alternatives, a comma inside one --tag means all.
func addFilterFlags(c *cobra.Command, f *inspect.Filter) {
	c.Flags().StringArrayVar(&f.Hosts, "host", nil, "only snapshots from this host (repeatable: any of them)")
	c.Flags().StringArrayVar(&f.Spaces, "space", nil, "only snapshots of this space (repeatable: any of them)")
	c.Flags().StringArrayVar(&f.Paths, "path", nil, "only snapshots that include this backed-up path (repeatable: all of them)")
	c.Flags().StringArrayVar(&f.Tags, "tag", nil, "only snapshots with this tag; \"a,b\": with both (repeatable: any of them)")
}

// selectSnapshots returns the snapshots named by refs (each resolved as
// every command resolves a reference), or, without refs, every snapshot
// the filter passes, oldest first.
func selectSnapshots(cmd *cobra.Command, r *repo.Repository, refs []string, f inspect.Filter) ([]*repo.Snapshot, error) {
	if len(refs) > 0 {
		var out []*repo.Snapshot
		seen := map[string]bool{}
		for _, ref := range refs {
			sn, err := r.FindSnapshot(cmd.Context(), ref)
			if err != nil {
				return nil, err
			}
			if !seen[sn.ID.String()] && f.Match(sn) {
				seen[sn.ID.String()] = true
				out = append(out, sn)
			}
		}
		slices.SortStableFunc(out, func(x, y *repo.Snapshot) int { return x.Time.Compare(y.Time) })
		return out, nil
	}
	all, err := r.Snapshots(cmd.Context())
	if err != nil {
		return nil, err
	}
	return f.Select(all), nil
}
