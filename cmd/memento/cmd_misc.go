package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"memento/repo"
)

func newIndexCommand(a *app) *cobra.Command {
	c := &cobra.Command{Use: "index", Short: "Manage the local index cache"}
	c.AddCommand(&cobra.Command{
		Use:   "rebuild",
		Short: "Recreate the local index from the packs and manifests in the repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.openRead(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := r.RebuildIndex(cmd.Context())
			if err != nil {
				return err
			}
			a.printf("index rebuilt from %s: %s, %s\n", plural(int(res.Packs), "pack"), plural(int(res.Blobs), "blob"), plural(int(res.Snapshots), "snapshot"))
			for _, d := range res.Damaged {
				a.printf("damaged: %s\n", d)
			}
			if err := a.emit(res); err != nil {
				return err
			}
			if len(res.Damaged) > 0 {
				return fmt.Errorf("%w: %s skipped (listed above)", repo.ErrCorrupt, plural(len(res.Damaged), "damaged pack"))
			}
			return nil
		},
	})
	return c
}

// version is set at link time by the Makefile (-X main.version=...).
var version = "dev"

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and the formats this binary reads, writes and creates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			info := map[string]any{"version": v, "go": runtime.Version(), "repository_format": repo.FormatVersion,
				"repository_formats_read": formats(1), "repository_formats_created": formats(repo.OldestInitFormat),
				"manifest_format": repo.ManifestVersion, "wal_format": 1}
			a.answerf("memento %s (%s), repository format %d (reads 1 to %d, init --format %d to %d), manifest format %d, Engram WAL v1\n",
				v, runtime.Version(), repo.FormatVersion, repo.FormatVersion, repo.OldestInitFormat, repo.FormatVersion, repo.ManifestVersion)
			return a.emit(info)
		},
	}
}

// formats lists the repository formats from oldest to the current one.
func formats(oldest int) []int {
	var fs []int
	for v := oldest; v <= repo.FormatVersion; v++ {
		fs = append(fs, v)
	}
	return fs
}

func newUnlockCommand(a *app) *cobra.Command {
	var opts repo.RemoveLocksOptions
	c := &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale locks (of processes that died), saying for each lock what was kept and why",
		Long: `unlock removes the locks that are stale: not refreshed for 30 minutes (judged by
the storage's clock, so clock skew between hosts does not matter), or written
on this boot in this PID namespace by a process that is gone. A lock of
another host, or of a container on this host, is kept while it is refreshed:
its pid cannot be checked from here. If you know its process is gone, remove
it by the ID unlock prints (--remove ID), or every lock (--remove-all) when
you know nothing else runs. One line per lock says what was done and why.`,
		Example: `  memento unlock
  memento unlock --remove 1a2b3c4d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			locks, err := r.RemoveLocks(cmd.Context(), opts)
			if err != nil {
				return err
			}
			type lockJSON struct {
				ID         string  `json:"id"`
				Host       string  `json:"host"`
				PID        int     `json:"pid"`
				Command    string  `json:"command"`
				Exclusive  bool    `json:"exclusive"`
				AgeSeconds float64 `json:"age_seconds"`
				Stale      bool    `json:"stale"`
				Removed    bool    `json:"removed"`
				Reason     string  `json:"reason"`
			}
			out := struct {
				Removed int        `json:"removed"`
				Kept    int        `json:"kept"`
				Locks   []lockJSON `json:"locks"`
			}{Locks: []lockJSON{}}
			for _, l := range locks {
				verb := "kept"
				if l.Removed {
					verb = "removed"
					out.Removed++
				} else {
					out.Kept++
				}
				reason := l.Reason
				if l.Removed && !l.Stale {
					reason += " (removed as asked)"
				}
				a.printf("%s: lock %s of '%s' by %s pid %d: %s\n", verb, l.ID(), l.Command, l.Host, l.PID, reason)
				out.Locks = append(out.Locks, lockJSON{ID: l.ID(), Host: l.Host, PID: l.PID, Command: l.Command, Exclusive: l.Exclusive,
					AgeSeconds: l.Age.Seconds(), Stale: l.Stale, Removed: l.Removed, Reason: l.Reason})
			}
			a.printf("removed %s, kept %d\n", plural(out.Removed, "lock"), out.Kept)
			if out.Kept > 0 {
				a.printf("a kept lock is live; if you know its process is gone, remove it with 'memento unlock --remove ID'\n")
			}
			return a.emit(out)
		},
	}
	c.Flags().BoolVar(&opts.All, "remove-all", false, "remove every lock, even live ones (only when you know nothing runs)")
	c.Flags().StringSliceVar(&opts.IDs, "remove", nil, "also remove the lock with this `ID` (as unlock or the lock error prints it), even if it looks live; repeatable")
	return c
}
