package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"memento/engram"
	"memento/repo"
	"memento/repo/walarchive"
)

// ensureIdentity gives the data dir an identity if it has none (backup, wal
// archive and wal watch do, before anything else). A data dir where it
// cannot be created (read-only) is a usage error naming the file and the
// command that creates it: memento never guesses an identity.
func ensureIdentity(dataDir string) (*engram.Identity, error) {
	id, _, err := engram.EnsureIdentity(dataDir)
	if err == nil {
		return id, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("data dir %s: %w: %v", dataDir, repo.ErrNotFound, err)
	}
	if errors.Is(err, fs.ErrPermission) || isReadOnlyFS(err) {
		return nil, usagef("%s: no database identity and it cannot be created (%v); create it with 'memento identity init --data-dir %s'",
			engram.IdentityPath(dataDir), err, dataDir)
	}
	return nil, err
}

// dataDirLine ensures the data dir's identity and returns the line of
// history its space is on.
func dataDirLine(ctx context.Context, r *repo.Repository, dataDir, space string) (walarchive.Line, error) {
	if _, err := ensureIdentity(dataDir); err != nil {
		return walarchive.Line{}, err
	}
	host, _ := os.Hostname()
	l, err := walarchive.DataDirTimeline(ctx, r, dataDir, space, host)
	if err != nil {
		return l, fmt.Errorf("space %s: %w", space, err)
	}
	return l, nil
}

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
		out := a.answerf // identity show: the answer, printed with -q too
		if created {
			out = a.printf
		}
		out("%s %s (created %s on %s, data dir %s)\n", what, id.Identity, a.when(id.Created), id.Host, id.DataDir)
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

func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }
