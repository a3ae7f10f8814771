package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"memento/chunk"
	"memento/engram"
	"memento/repo"
	"memento/repo/backup"
)

// quiesceFlags configure how a space backup freezes the database while it
// reads the tiers. They are registered on the backup command by
// registerQuiesceFlags and read by backupOne below.
type quiesceFlags struct {
	pid      int
	preHook  string
	postHook string
}

// quiesceState is the app's part of quiescing: the backup command's flags
// and the one quiescer built from them for all the spaces it backs up.
type quiesceState struct {
	flags    quiesceFlags
	once     sync.Once
	quiescer *engram.Quiescer
}

func (a *app) registerQuiesceFlags(fl *pflag.FlagSet) {
	fl.IntVar(&a.quiesce.flags.pid, "quiesce-pid", 0, "pause this Engram process (SIGUSR1) while the tiers are read, resume it (SIGUSR2) before the WAL is")
	fl.StringVar(&a.quiesce.flags.preHook, "pre-hook", "", "shell command that pauses the database before the tiers are read")
	fl.StringVar(&a.quiesce.flags.postHook, "post-hook", "", "shell command that resumes the database (always run after --pre-hook, even on error)")
}

// currentQuiescer builds the quiescer from the flags (nil: no quiesce). It
// pauses the database once for all spaces being backed up in parallel
// (engram.Quiescer) and reports each pause when it ends.
func (a *app) currentQuiescer() (*engram.Quiescer, error) {
	q := a.quiesce.flags
	switch {
	case q.pid != 0 && (q.preHook != "" || q.postHook != ""):
		return nil, usagef("give either --quiesce-pid or --pre-hook/--post-hook, not both")
	case (q.preHook == "") != (q.postHook == ""):
		return nil, usagef("--pre-hook and --post-hook go together (the database must be resumed)")
	case q.pid < 0:
		return nil, usagef("--quiesce-pid %d: not a process id", q.pid)
	case q.pid == 0 && q.preHook == "":
		return nil, nil
	}
	a.quiesce.once.Do(func() {
		var qr *engram.Quiescer
		if q.pid != 0 {
			qr = engram.NewSignalQuiescer(q.pid)
		} else {
			qr = engram.NewHookQuiescer(engram.Hook{Name: "--pre-hook", Command: q.preHook, Output: os.Stderr},
				engram.Hook{Name: "--post-hook", Command: q.postHook, Output: os.Stderr})
		}
		qr.OnResume = func(paused time.Duration) {
			a.log.Warn("database quiesced", "paused", paused.Round(time.Microsecond).String())
			a.printf("database paused for %s while the tiers were read\n", paused.Round(time.Microsecond))
		}
		a.quiesce.quiescer = qr
	})
	return a.quiesce.quiescer, nil
}

// backupOne backs up a space with its WAL positions and state digest in
// the manifest (backup.BackupSpace), quiescing the database around the
// tiers if asked; the database is resumed whatever happens (Ctrl-C cancels
// ctx rather than killing the process). Plain paths go to backup.Backup.
// The space backups of one command share replays, so that their state
// replays take turns (backup.ConcurrentReplays).
//
// latest, when not nil, holds the newest snapshot of every space of the
// command (Repository.LatestSnapshotIDs, one pass over the catalog): a
// space without an entry has none.
func (a *app) backupOne(ctx context.Context, r *repo.Repository, opts backup.BackupOptions, replays *backup.ReplayLimiter, allowTierRewrite bool, latest map[string]chunk.ID) (*repo.Snapshot, error) {
	if opts.Space == "" {
		return backup.Backup(ctx, r, opts)
	}
	// The data dir's identity is created when missing, and a fork a restore
	// left pending is recorded, before the snapshot is tagged with its line.
	if _, err := dataDirLine(ctx, r, opts.DataDir, opts.Space); err != nil {
		return nil, err
	}
	q, err := a.currentQuiescer()
	if err != nil {
		return nil, err
	}
	so := backup.SpaceOptions{Replays: replays, AllowTierRewrite: allowTierRewrite}
	if latest != nil {
		so.Latest = func(ctx context.Context) (*repo.Snapshot, error) {
			id, ok := latest[opts.Space]
			if !ok {
				return nil, nil
			}
			return r.LoadSnapshotFile(ctx, id)
		}
	}
	if q != nil {
		so.Pause, so.Resume = q.Acquire, q.Release
	}
	return backup.BackupSpace(ctx, r, opts, so)
}

// listSpaces returns the space ids found under DIR/spaces: its directories,
// and its symlinks to directories (a space kept on another disk). It never
// skips a space silently: each entry that looks like a space but cannot be
// one (a bad name, a symlink to nothing or to a file) has an error naming it
// in bad, and the caller still handles the spaces returned. err is for a
// data dir without spaces/ or without any space (wrapping repo.ErrNotFound).
// Hidden entries and files are not spaces (engram.ListSpaces).
func listSpaces(dataDir string) (spaces []string, bad []error, err error) {
	return listSpacesWarned(dataDir, nil)
}

// listSpacesWarned is listSpaces warning about each skipped entry only once
// per warned set (wal watch lists the spaces every --interval; nil warns
// every time).
func listSpacesWarned(dataDir string, warned map[string]bool) (spaces []string, bad []error, err error) {
	l, err := engram.ListSpaces(dataDir)
	if l != nil {
		for _, sk := range l.Skipped {
			if warned != nil {
				if warned[sk.Path] {
					continue
				}
				warned[sk.Path] = true
			}
			if sk.Reason == engram.SkippedSafetyCopy {
				slog.Warn("skipping a restore's safety copy", "dir", sk.Path)
			} else {
				slog.Warn("not a directory, so not a space; skipped", "path", sk.Path)
			}
		}
	}
	var nse *engram.NoSpacesError
	if errors.As(err, &nse) {
		return nil, nil, fmt.Errorf("data dir %s: %w: %s", nse.DataDir, repo.ErrNotFound, nse.Reason)
	}
	if err != nil {
		return nil, nil, err
	}
	return l.Spaces, l.Bad, nil
}
