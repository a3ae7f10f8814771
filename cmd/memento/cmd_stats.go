package main

import (
	"github.com/spf13/cobra"

	"memento/repo/inspect"
)

func newStatsCommand(a *app) *cobra.Command {
	var (
		mode string
		flt  inspect.Filter
	)
	c := &cobra.Command{
		Use:   "stats [SNAPSHOT...]",
		Short: "Show the restore size, the stored data, and the deduplication and compression ratios",
		Long: `stats sums the given snapshots (IDs, prefixes or "latest"), or every
snapshot the filters select (all of them by default):

  restore size   the files of every snapshot, as often as they appear:
                 what restoring them all would write (restic's restore-size)
  raw data       the distinct data blobs they reference, uncompressed and
                 as stored (compressed, encrypted; a small file stored in
                 a group counts its group, once), and their tree blobs
                 (restic's raw-data)
  dedup ratio    restore size / distinct uncompressed data
  compression    distinct uncompressed data / its stored size

Every distinct tree is read once; no file data is read (but the frames
naming the groups of small files, format 6). --mode restore-size
skips the blob sizes.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if mode != "all" && mode != "restore-size" && mode != "raw-data" {
				return usagef("--mode %q: want restore-size, raw-data or all", mode)
			}
			ctx := cmd.Context()
			r, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			sns, err := selectSnapshots(cmd, r, args, flt)
			if err != nil {
				return err
			}
			st, err := inspect.ComputeStats(ctx, r, sns, inspect.StatsOptions{RestoreSizeOnly: mode == "restore-size"})
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.emit(st)
			}
			a.printf("Snapshots:          %d\n", st.Snapshots)
			if mode != "raw-data" {
				a.printf("Restore size:       %s (%d bytes) in %s, %s, %s\n", human(st.Bytes), st.Bytes,
					plural(int(st.Files), "file"), plural(int(st.Dirs), "dir"), plural(int(st.Symlinks), "symlink"))
			}
			if mode != "restore-size" {
				a.printf("Raw data:           %s (%d bytes) uncompressed in %s\n", human(st.DataRawBytes), st.DataRawBytes, plural(int(st.DataBlobs), "blob"))
				a.printf("Stored data:        %s (%d bytes)\n", human(st.DataStoredBytes), st.DataStoredBytes)
				a.printf("Trees:              %s, %s stored\n", plural(int(st.TreeBlobs), "blob"), human(st.TreeStoredBytes))
				a.printf("Dedup ratio:        %.2fx\n", st.DedupRatio)
				a.printf("Compression ratio:  %.2fx\n", st.CompressionRatio)
			}
			return nil
		},
	}
	c.Flags().StringVar(&mode, "mode", "all", "what to show: restore-size, raw-data or all")
	addFilterFlags(c, &flt)
	return c
}
