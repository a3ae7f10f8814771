package main

import (
	"errors"

	"github.com/spf13/cobra"

	"memento/engram"
)

// newIdentityCommand is `memento identity init|show`: the database identity
// kept in DIR/.memento/identity.json (docs/engram-format.md).
func newIdentityCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "identity",
		Short: "Create or show the identity of an Engram data dir (DIR/.memento/identity.json)",
		Long: `Every Engram data dir memento backs up or archives has an identity: 128 random
bits created once and kept in DIR/.memento/identity.json. Snapshots, archived
WAL and timeline history records carry it, so two databases that have a space
of the same id never mix in one repository. backup, wal archive and wal watch
create it when missing; 'identity init' does it explicitly (e.g. before a
read-only data dir is backed up).`,
	}
	var dataDir string
	show := func(id *engram.Identity, created bool) error {
		what := "identity"
		if created {
			what = "created identity"
		}
		a.printf("%s %s (created %s on %s, data dir %s)\n", what, id.Identity, id.Created.Format("2006-01-02T15:04:05Z07:00"), id.Host, id.DataDir)
		return a.emit(id)
	}
	initCmd := &cobra.Command{
		Use:   "init --data-dir DIR",
		Short: "Create the data dir's identity if it has none, and print it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" {
				return usagef("--data-dir DIR is required")
			}
			id, created, err := engram.EnsureIdentity(dataDir)
			if err != nil {
				return err
			}
			return show(id, created)
		},
	}
	initCmd.Flags().StringVar(&dataDir, "data-dir", "", "Engram data directory (required)")
	showCmd := &cobra.Command{
		Use:   "show --data-dir DIR",
		Short: "Print the data dir's identity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" {
				return usagef("--data-dir DIR is required")
			}
			id, err := engram.ReadIdentity(dataDir)
			if errors.Is(err, engram.ErrNoIdentity) {
				return usagef("%v", err)
			}
			if err != nil {
				return err
			}
			return show(id, false)
		},
	}
	showCmd.Flags().StringVar(&dataDir, "data-dir", "", "Engram data directory (required)")
	c.AddCommand(initCmd, showCmd)
	return c
}
