package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"memento/repo/inspect"
)

func newDiffCommand(a *app) *cobra.Command {
	var metadata bool
	c := &cobra.Command{
		Use:   "diff SNAPSHOT-A SNAPSHOT-B",
		Short: "Show what changed between two snapshots, path by path, with a summary",
		Long: `diff compares two snapshots (IDs, unique prefixes or "latest") path by path:
"+" added in B, "-" removed from A, "M" content (or symlink target)
changed, "U" only metadata (mode, owner, mtime; a directory's mtime,
which changes with every entry, is not compared) changed, listed with
--metadata. A path whose type changed is removed and added. Identical
subtrees are skipped without being read. The summary counts files,
directories, symlinks and bytes added and removed (a modified file's old
size is removed, its new size added).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRead(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			sa, err := r.FindSnapshot(ctx, args[0])
			if err != nil {
				return err
			}
			sb, err := r.FindSnapshot(ctx, args[1])
			if err != nil {
				return err
			}
			a.printf("comparing snapshot %s to %s:\n\n", sa.ShortID(), sb.ShortID())
			changes := []inspect.Change{}
			sum, err := inspect.Diff(ctx, r, sa, sb, func(c inspect.Change) error {
				if c.Kind == inspect.Metadata && !metadata {
					return nil
				}
				if a.jsonOut {
					changes = append(changes, c)
					return nil
				}
				p := c.Path
				if c.Type == "dir" {
					p += "/"
				}
				if c.Kind == inspect.Metadata {
					p += "  (" + c.What + ")"
				}
				a.printf("%-4s %s\n", c.Kind, p)
				return nil
			})
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.emit(map[string]any{"a": sa.ID.String(), "b": sb.ID.String(), "changes": changes, "summary": sum})
			}
			a.printf("\nFiles:       %5d new, %5d removed, %5d changed\n", sum.Added.Files, sum.Removed.Files, sum.Modified)
			a.printf("Dirs:        %5d new, %5d removed\n", sum.Added.Dirs, sum.Removed.Dirs)
			a.printf("Symlinks:    %5d new, %5d removed\n", sum.Added.Symlinks, sum.Removed.Symlinks)
			a.printf("Metadata:    %5d changed only\n", sum.MetadataOnly)
			a.printf("Added:   %s\n", fmt.Sprintf("%s (%d bytes)", human(sum.Added.Bytes), sum.Added.Bytes))
			a.printf("Removed: %s\n", fmt.Sprintf("%s (%d bytes)", human(sum.Removed.Bytes), sum.Removed.Bytes))
			return nil
		},
	}
	c.Flags().BoolVar(&metadata, "metadata", false, "also list paths whose metadata only changed (U)")
	return c
}
