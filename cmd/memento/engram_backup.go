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
// the manifest (repo.EngramRecorder), quiescing the database around the
// tiers if asked. The database is resumed whatever happens: the recorder's
// Done is deferred, and Ctrl-C cancels ctx rather than killing the process.
func (a *app) backupOne(ctx context.Context, r *repo.Repository, opts backup.BackupOptions) (*repo.Snapshot, error) {
	if opts.Space == "" {
		return backup.Backup(ctx, r, opts)
	}
	line, err := dataDirLine(ctx, r, opts.DataDir, opts.Space)
	if err != nil {
		return nil, err
	}
	rec := backup.NewEngramRecorder(ctx, opts.DataDir, opts.Space)
	if !opts.NoParent {
		parent := opts.Parent
		if parent == nil {
			parent, _ = r.LatestSnapshot(ctx, opts.Space) // none yet: nothing to reuse
			if parent != nil && (parent.Identity() != line.Identity || parent.Timeline() != line.Timeline) {
				parent = nil // another database's or timeline's: its WAL end says nothing of this one
			}
		}
		if parent != nil && len(parent.Damage()) == 0 { // a marked parent's WAL end is not reused
			rec.Parent = parent.Engram
		}
	}
	q, err := a.currentQuiescer()
	if err != nil {
		return nil, err
	}
	if q != nil {
		rec.Pause, rec.Resume = q.Acquire, q.Release
	}
	defer rec.Done()
	defer rec.Close()
	rec.Attach(&opts)
	sn, err := backup.Backup(ctx, r, opts)
	if derr := rec.Done(); err == nil && derr != nil {
		return sn, derr
	}
	if err == nil && rec.Reused {
		slog.Info("WAL unchanged since the parent snapshot: reused its end position and state digest", "space", opts.Space)
	}
	return sn, err
}

// listSpaces returns the space ids found under DIR/spaces: its directories,
// and its symlinks to directories (a space kept on another disk). It never
// skips a space silently: each entry that looks like a space but cannot be
// one (a bad name, a symlink to nothing or to a file) has an error naming it
// in bad, and the caller still handles the spaces returned. err is for a
// data dir without spaces/ or without any space (wrapping repo.ErrNotFound).
// Hidden entries and files are not spaces (engram.ListSpaces).
func listSpaces(dataDir string) (spaces []string, bad []error, err error) {
	l, err := engram.ListSpaces(dataDir)
	if l != nil {
		for _, sk := range l.Skipped {
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
