package main

import (
	"slices"

	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/maintenance"
)

func newTagCommand(a *app) *cobra.Command {
	var edit repo.TagEdit
	c := &cobra.Command{
		Use:   "tag --add T | --remove T | --set T... SNAPSHOT...",
		Short: "Add, remove or replace the tags of snapshots",
		Long: `A snapshot's manifest is immutable and named by its hash, so tag writes each
changed snapshot anew (same files, time, host and WAL positions; a new ID)
with an "original:<ID>" tag naming the snapshot it replaces, records the
change in the audit trail and then deletes the old manifest (a damage
marker of check --repair follows the snapshot to its new ID). Tags memento
writes itself (damage marks, identity:, timeline:, original:) are kept and
cannot be given. --set "" removes every user tag. Tags are validated as
backup --tag's: no comma, no control character, at most 128 bytes.

One tag or forget runs at a time (they take the repository's manifest lock,
shared with backups, restores and mounts): a second one waits for the first,
up to 2 minutes, then applies its change to the snapshot as the first left
it. A snapshot ID that a tag change replaced still names the snapshot (by
its original: tag), so concurrent or repeated runs with the same ID add up.
Exit 6 if the lock stays taken (or prune holds the exclusive one), 7 if a
snapshot is gone (e.g. forgotten meanwhile).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("set") {
				edit.Set = slices.DeleteFunc(slices.Clone(edit.Set), func(t string) bool { return t == "" })
				if edit.Set == nil {
					edit.Set = []string{}
				}
			} else {
				edit.Set = nil
			}
			if edit.Set == nil && len(edit.Add) == 0 && len(edit.Remove) == 0 {
				return usagef("nothing to change: give --add, --remove or --set")
			}
			if _, _, err := edit.Apply(nil); err != nil {
				return usagef("%v", err)
			}
			r, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := maintenance.Retag(cmd.Context(), r, maintenance.TagOptions{Refs: args, Edit: edit})
			if res != nil {
				for _, ch := range res.Changed {
					a.printf("snapshot %.8s: tags %v, saved as new snapshot %.8s\n", ch.Old, userTags(ch.Tags), ch.New)
				}
				for _, id := range res.Unchanged {
					a.printf("snapshot %.8s: tags already as asked, unchanged\n", id)
				}
			}
			if err != nil {
				return err
			}
			return a.emit(res)
		},
	}
	c.Flags().StringSliceVar(&edit.Add, "add", nil, "add this tag (repeatable, or comma-separated)")
	c.Flags().StringSliceVar(&edit.Remove, "remove", nil, "remove this tag (repeatable, or comma-separated)")
	c.Flags().StringSliceVar(&edit.Set, "set", nil, "replace the user tags with these (repeatable, or comma-separated; \"\": none)")
	return c
}

// userTags returns the tags users gave, without the ones memento writes.
func userTags(tags []string) []string {
	m := repo.Manifest{Tags: tags}
	return m.UserTags()
}
