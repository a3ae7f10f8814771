package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

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
	quiescer *quiescer
}

func (a *app) registerQuiesceFlags(fl *pflag.FlagSet) {
	fl.IntVar(&a.quiesce.flags.pid, "quiesce-pid", 0, "pause this Engram process (SIGUSR1) while the tiers are read, resume it (SIGUSR2) before the WAL is")
	fl.StringVar(&a.quiesce.flags.preHook, "pre-hook", "", "shell command that pauses the database before the tiers are read")
	fl.StringVar(&a.quiesce.flags.postHook, "post-hook", "", "shell command that resumes the database (always run after --pre-hook, even on error)")
}

// quiescer pauses the database once for all spaces being backed up in
// parallel: the first space to start reading its tiers pauses it, the last
// one to finish them resumes it, so the pause covers exactly the union of
// the tier reads.
type quiescer struct {
	a      *app // for messages
	mu     sync.Mutex
	n      int
	since  time.Time
	pause  func() error
	resume func() error
}

func (q *quiescer) acquire() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		if err := q.pause(); err != nil {
			return err
		}
		q.since = time.Now()
	}
	q.n++
	return nil
}

func (q *quiescer) release() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n--
	if q.n > 0 {
		return nil
	}
	err := q.resume()
	q.a.log.Warn("database quiesced", "paused", time.Since(q.since).Round(time.Microsecond).String())
	q.a.printf("database paused for %s while the tiers were read\n", time.Since(q.since).Round(time.Microsecond))
	return err
}

// currentQuiescer builds the quiescer from the flags (nil: no quiesce).
func (a *app) currentQuiescer() (*quiescer, error) {
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
		qr := &quiescer{a: a}
		if q.pid != 0 {
			qr.pause = func() error { return signalPID(q.pid, syscall.SIGUSR1) }
			qr.resume = func() error { return signalPID(q.pid, syscall.SIGUSR2) }
		} else {
			qr.pause = func() error { return runHook("--pre-hook", q.preHook) }
			qr.resume = func() error { return runHook("--post-hook", q.postHook) }
		}
		a.quiesce.quiescer = qr
	})
	return a.quiesce.quiescer, nil
}

func signalPID(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, err)
	}
	return nil
}

func runHook(flag, cmdline string) error {
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %q: %w", flag, cmdline, err)
	}
	return nil
}

// backupOne backs up a space with its WAL positions and state digest in
// the manifest (repo.EngramRecorder), quiescing the database around the
// tiers if asked. The database is resumed whatever happens: the recorder's
// Done is deferred, and Ctrl-C cancels ctx rather than killing the process.
func (a *app) backupOne(ctx context.Context, r *repo.Repository, opts backup.BackupOptions) (*repo.Snapshot, error) {
	if opts.Space == "" {
		return backup.Backup(ctx, r, opts)
	}
	rec := backup.NewEngramRecorder(ctx, opts.DataDir, opts.Space)
	if !opts.NoParent {
		parent := opts.Parent
		if parent == nil {
			parent, _ = r.LatestSnapshot(ctx, opts.Space) // none yet: nothing to reuse
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
		rec.Pause, rec.Resume = q.acquire, q.release
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
