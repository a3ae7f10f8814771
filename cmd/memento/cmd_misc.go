package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"memento/repo"
)

func init() {
	commands = append(commands, newIndexCommand, newVersionCommand, newUnlockCommand)
}

func newIndexCommand(a *app) *cobra.Command {
	c := &cobra.Command{Use: "index", Short: "Manage the local index cache"}
	c.AddCommand(&cobra.Command{
		Use:   "rebuild",
		Short: "Recreate the local index from the packs and manifests in the repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := r.RebuildIndex(cmd.Context())
			if err != nil {
				return err
			}
			a.printf("index rebuilt from %d packs: %d blobs, %d snapshots\n", res.Packs, res.Blobs, res.Snapshots)
			for _, d := range res.Damaged {
				a.printf("damaged: %s\n", d)
			}
			if err := a.emit(res); err != nil {
				return err
			}
			if len(res.Damaged) > 0 {
				return fmt.Errorf("%w: %d damaged packs skipped (listed above)", repo.ErrCorrupt, len(res.Damaged))
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
		Short: "Print the version and the formats this binary reads and writes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			info := map[string]any{"version": v, "go": runtime.Version(), "repository_format": repo.FormatVersion,
				"manifest_format": repo.ManifestVersion, "wal_format": 1}
			a.printf("memento %s (%s), repository format %d, manifest format %d, Engram WAL v1\n", v, runtime.Version(), repo.FormatVersion, repo.ManifestVersion)
			return a.emit(info)
		},
	}
}

func newUnlockCommand(a *app) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale locks (of processes that died)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			n, err := r.RemoveStaleLocks(cmd.Context(), all)
			if err != nil {
				return err
			}
			a.printf("removed %d locks\n", n)
			return a.emit(map[string]int{"removed": n})
		},
	}
	c.Flags().BoolVar(&all, "remove-all", false, "remove every lock, even live ones (only when you know nothing runs)")
	return c
}
