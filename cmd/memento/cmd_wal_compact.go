package main

import (
	"time"

	"github.com/spf13/cobra"

	"memento/repo/walarchive"
)

func newWALCompactCommand(a *app) *cobra.Command {
	var (
		sel   spaceSel
		force bool
		grace time.Duration
	)
	c := &cobra.Command{
		Use:   "compact --data-dir DIR --space ID [--force]",
		Short: "Rewrite the sealed WAL segments of a space into one compacted segment",
		Long: `compact replaces the run of sealed segments at the start of a space's WAL
(stopping at the first one not yet archived in the repository, unless --force)
by one compacted segment (the walreplay spec: one entry per live id, then a
marker), atomically: write, fsync, rename, fsync the directory. The originals
are kept, hard-linked, under wal/.archive-<time>/ and deleted by a later
compact once older than --grace. The archive keeps the originals too, so
point-in-time recovery inside the compacted run still works from the repository.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(sel.spaces) != 1 || sel.dataDir == "" {
				return usagef("give --data-dir DIR and one --space ID")
			}
			r, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := walarchive.CompactWAL(cmd.Context(), r, sel.dataDir, sel.spaces[0], walarchive.CompactOptions{Force: force, Grace: grace})
			if err != nil {
				return err
			}
			a.printf("space %s: compacted %d segments (seq %d..%d, %s) into %s (%s, %s); originals kept in %s\n",
				res.Space, res.Segments, res.FirstSeq, res.LastSeq, human(uint64(res.BytesBefore)), res.Name, human(uint64(res.BytesAfter)), plural(int(res.Records), "record"), res.KeptIn)
			if res.Removed > 0 {
				a.printf("space %s: removed %d kept-original directories older than %s\n", res.Space, res.Removed, grace)
			}
			return a.emit(res)
		},
	}
	sel.register(c, false)
	c.Flags().BoolVar(&force, "force", false, "also compact segments not yet archived in the repository")
	c.Flags().DurationVar(&grace, "grace", 7*24*time.Hour, "how long originals are kept under wal/.archive-<time>/")
	return c
}
