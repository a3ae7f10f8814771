package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/restore"
)

// app holds what every command shares: global flags and the output streams.
type app struct {
	repoURL      string
	passwordFile string
	cacheDir     string
	jsonOut      bool
	quiet        bool
	verbose      bool
	noProgress   bool
	noLock       bool
	s3           s3Flags      // S3 tuning flags (s3.go)
	quiesce      quiesceState // backup's --quiesce-pid/--pre-hook/--post-hook (engram_backup.go)

	stdout, stderr io.Writer
	log            *slog.Logger
	opened         []*repo.Repository   // by openWith, to tell a lost lock (lockLost)
	backends       []io.Closer          // backends opened that hold resources (own), closed when the command ends
	restoreMode    restore.IdentityMode // what restore does with the target's identity (cmd_restore.go)

	// keyCache is --key-cache: keep the unlocked key in the kernel keyring this long (cmd_key.go).
	keyCache time.Duration
	// partial restore, damage skipping, unsafe targets (cmd_restore.go)
	restoreFilter      *restore.Filter
	restoreSkipDamaged bool
	restoreForceTarget bool
	tz                 string         // --tz: the zone of times read and printed (times.go)
	loc                *time.Location // --tz loaded; nil: time.Local
	logFormat          string         // --log-format text|json (logging.go)
	logLevel           slog.LevelVar  // the level of a.log (logging.go)

	// audit records the repository itself kept out of the trail (audit
	// in cmd_log.go: a full file system, an unreachable endpoint), the
	// first one's error and its cause (auditLostCause)
	auditMu        sync.Mutex
	auditLost      int
	auditLostErr   error
	auditLostCause error
}

func run(ctx context.Context, args []string) int {
	a := &app{stdout: os.Stdout, stderr: os.Stderr}
	root := a.rootCommand()
	strictArgs(root)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	a.closeBackends()
	err = a.noteAuditLost(err)
	if lost := a.lockLost(); lost != nil {
		// The command was stopped by its lock's context: say why, not
		// "interrupted" (or, for wal watch and mount, nothing).
		if err == nil || errors.Is(err, context.Canceled) {
			err = lost
		} else {
			err = fmt.Errorf("%w; then: %v", lost, err)
		}
	}
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %v", context.Canceled, err)
	}
	code := exitCode(err)
	if !a.jsonOut && errors.Is(err, errUsage) {
		// A flag error stops cobra's parsing before a --json after it.
		a.jsonOut = jsonInArgs(args)
	}
	a.printError(err, code)
	return code
}

// jsonInArgs reports whether args ask for --json (up to a "--"): what a
// flag error left unparsed still chooses the shape of that error.
func jsonInArgs(args []string) bool {
	for _, arg := range args {
		if arg == "--" {
			break
		}
		if arg == "--json" {
			return true
		}
		if v, ok := strings.CutPrefix(arg, "--json="); ok {
			b, err := strconv.ParseBool(v)
			return err == nil && b
		}
	}
	return false
}

// printError reports the error that ends the command: one line on stderr,
// "memento: " and the message, or with --json one JSON object (restic's
// shape: message_type "exit_error", the exit code and the message).
func (a *app) printError(err error, code int) {
	msg := oneLine(dedupPrefixes(err.Error()))
	if code == exitInterrupted {
		msg = "interrupted: stopped cleanly, nothing partial was kept (" + msg + ")"
	}
	if a.jsonOut {
		b, jerr := json.Marshal(jsonError{MessageType: "exit_error", Code: code, Message: msg})
		if jerr == nil {
			fmt.Fprintf(a.stderr, "%s\n", b)
			return
		}
	}
	a.errorLine(msg, code) // in --log-format
}

// jsonError is what a failed command prints on stderr with --json.
type jsonError struct {
	MessageType string `json:"message_type"` // always "exit_error"
	Code        int    `json:"code"`         // the exit code (docs/cli.md)
	Message     string `json:"message"`
}

// dedupPrefixes drops a "what: " segment that repeats the one before it
// ("space a: space a: not found" is "space a: not found"): layers that each
// name what they work on may name the same thing twice.
func dedupPrefixes(s string) string {
	parts := strings.Split(s, ": ")
	out := parts[:1]
	for _, p := range parts[1:] {
		if p == out[len(out)-1] && p != "" {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ": ")
}

// strictArgs makes cobra's own argument errors usage errors (exit 2), and a
// group command (memento, memento wal, ...) refuse an unknown subcommand
// rather than print its help and exit 0.
func strictArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictArgs(sub)
	}
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
				}
				return usagef("%s; see '%s --help'", msg, cmd.CommandPath())
			}
			return cmd.Help()
		}
		return
	}
	if v := c.Args; v != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := v(cmd, args); err != nil {
				msg := err.Error()
				if !strings.HasPrefix(msg, "unknown command") {
					msg = strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + " " + msg
				}
				return usagef("%s; see '%s --help'", msg, cmd.CommandPath())
			}
			return nil
		}
	}
}

// oneLine keeps error output to a single line, as operators grep logs for it.
func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "memento",
		Short: "Backup, WAL archiving and point-in-time recovery for Engram",
		Long: `memento backs up Engram data directories into a deduplicated, encrypted
repository, archives their WAL continuously, restores any space to any
nanosecond of its history, and mounts snapshots read-only.

The repository is --repo or $MEMENTO_REPOSITORY; the password comes from
$MEMENTO_PASSWORD, $MEMENTO_PASSWORD_FILE, --password-file, or a prompt.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := a.setupLog(); err != nil {
				return err
			}
			return a.setZone()
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return &usageError{err.Error()} })
	pf := root.PersistentFlags()
	pf.StringVarP(&a.repoURL, "repo", "r", os.Getenv("MEMENTO_REPOSITORY"), "repository location (env MEMENTO_REPOSITORY)")
	pf.StringVar(&a.passwordFile, "password-file", "", "read the password from this file (env MEMENTO_PASSWORD_FILE)")
	pf.StringVar(&a.cacheDir, "cache-dir", "", "where the local index lives (env MEMENTO_CACHE_DIR; default: user cache dir)")
	pf.BoolVar(&a.jsonOut, "json", false, "print machine-readable JSON on stdout")
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "print only errors, warnings and the answers asked for (listings): no progress, summaries or notes")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log debug details to stderr")
	pf.BoolVar(&a.noProgress, "no-progress", false, "never show a progress bar")
	pf.BoolVar(&a.noLock, "no-lock", false, "take no lock (commands that only read: restore, verify, mount, ls, snapshots, log, check, pitr ranges, dump, find, diff, stats, info), e.g. on a read-only repository")
	a.addS3Flags(pf)
	a.addKeyFlags(pf)
	a.addOutputFlags(pf)
	root.AddCommand(
		newAgentCommand(a),
		newBackupCommand(a),
		newCheckCommand(a),
		newForgetCommand(a),
		newInitCommand(a),
		newLogCommand(a),
		newLsCommand(a),
		newIdentityCommand(a),
		newIndexCommand(a),
		newVersionCommand(a),
		newUnlockCommand(a),
		newMountCommand(a),
		newUmountCommand(a),
		newPITRCommand(a),
		newPruneCommand(a),
		newRecoverVersionsCommand(a),
		newReplicateCommand(a),
		newRestoreCommand(a),
		newSnapshotsCommand(a),
		newVerifyCommand(a),
		newWALCommand(a),
		newKeyCommand(a),
		newDumpCommand(a),
		newFindCommand(a),
		newDiffCommand(a),
		newStatsCommand(a),
		newTagCommand(a),
		newInfoCommand(a),
	)
	return root
}

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// own keeps be to close when the command ends, if it holds resources (a
// local backend's open pack files). A command's backends live as long as it
// does: a mount's until it is unmounted, since the command returns only then.
func (a *app) own(be repo.Backend) repo.Backend {
	if c, ok := be.(io.Closer); ok {
		a.backends = append(a.backends, c)
	}
	return be
}

// closeBackends closes the backends the command opened.
func (a *app) closeBackends() {
	for _, c := range a.backends {
		if err := c.Close(); err != nil && a.log != nil {
			a.log.Warn("closing the repository backend", "err", err)
		}
	}
	a.backends = nil
}

// backend opens the repository location named by --repo; ctx bounds the
// network waits of opening it (an S3 probe), so Ctrl-C stops them.
func (a *app) backend(ctx context.Context, create bool) (repo.Backend, error) {
	if a.repoURL == "" {
		return nil, usagef("no repository: give --repo or set MEMENTO_REPOSITORY")
	}
	if strings.HasPrefix(a.repoURL, "s3:") {
		be, err := a.openS3Backend(ctx, a.repoURL, create)
		if err != nil {
			return nil, err
		}
		return be, nil
	}
	if create {
		be, err := local.Create(a.repoURL)
		if err != nil {
			return nil, err
		}
		return a.own(be), nil
	}
	be, err := local.Open(a.repoURL)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", repo.ErrNoRepository, a.repoURL, err)
	}
	return a.own(be), nil
}

// checkPasswordFileMode treats a password file the way ssh treats a private
// key: a regular file that other users can read or write is refused, one
// that its group can is used with a warning. Pipes (--password-file
// <(pass show memento)) and other special files are not checked.
func (a *app) checkPasswordFileMode(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	perm := fi.Mode().Perm()
	switch {
	case !fi.Mode().IsRegular():
	case perm&0o007 != 0:
		return usagef("password file %s has mode %04o: other users can read or change it; refusing it (chmod 600 %s)", f.Name(), perm, f.Name())
	case perm&0o070 != 0:
		a.log.Warn("password file is accessible by its group; chmod 600 it unless that group must read it", "file", f.Name(), "mode", fmt.Sprintf("%04o", perm))
	}
	return nil
}

// readPasswordFile reads a password from file (the trailing newline
// stripped), checking its mode first; a missing or empty file is a usage
// error.
func (a *app) readPasswordFile(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", usagef("password file: %v", err)
	}
	defer f.Close()
	if err := a.checkPasswordFileMode(f); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return "", usagef("password file %s is empty", file)
	}
	return p, nil
}

// password finds the password without ever echoing it.
func (a *app) password(confirm bool) (string, error) {
	// An exported but empty MEMENTO_PASSWORD is unset (as restic's
	// RESTIC_PASSWORD): it must not hide --password-file.
	if p := os.Getenv("MEMENTO_PASSWORD"); p != "" {
		return p, nil
	}
	file := a.passwordFile
	if file == "" {
		file = os.Getenv("MEMENTO_PASSWORD_FILE")
	}
	if file != "" {
		return a.readPasswordFile(file)
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", usagef("no password: set MEMENTO_PASSWORD or MEMENTO_PASSWORD_FILE, or use --password-file")
	}
	return a.promptPassword("repository password", confirm)
}

// promptPassword asks for a password on the terminal, without echo, twice
// with confirm.
func (a *app) promptPassword(what string, confirm bool) (string, error) {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", usagef("no %s: not a terminal to ask on", what)
	}
	fmt.Fprintf(a.stderr, "%s: ", what)
	p, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(a.stderr)
	if err != nil {
		return "", err
	}
	if confirm {
		fmt.Fprint(a.stderr, "enter it again: ")
		q, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		if string(p) != string(q) {
			return "", usagef("the passwords do not match")
		}
	}
	if len(p) == 0 {
		return "", usagef("empty password")
	}
	return string(p), nil
}

// open unlocks the repository for a command that writes to it: its lock is
// required, so --no-lock is refused.
func (a *app) open(ctx context.Context) (*repo.Repository, error) {
	if a.noLock {
		return nil, usagef("--no-lock: this command writes to the repository and needs its lock (--no-lock is for restore, verify, mount, ls, snapshots, log, check and pitr ranges)")
	}
	return a.openWith(ctx, repo.LockOptions{})
}

// openRead unlocks the repository for a command that only reads it: it takes
// no lock with --no-lock, and goes on without one (saying so) when the
// storage is read-only.
func (a *app) openRead(ctx context.Context) (*repo.Repository, error) {
	return a.openWith(ctx, repo.LockOptions{ReadOnly: true, NoLock: a.noLock})
}

// openFreeing unlocks the repository for forget and prune, which free space:
// on a full repository their lock goes into the backend's reserve.
func (a *app) openFreeing(ctx context.Context) (*repo.Repository, error) {
	if a.noLock {
		return nil, usagef("--no-lock: forget and prune delete from the repository and need their lock")
	}
	return a.openWith(ctx, repo.LockOptions{FreesSpace: true})
}

func (a *app) openWith(ctx context.Context, lock repo.LockOptions) (*repo.Repository, error) {
	be, err := a.backend(ctx, false)
	if err != nil {
		return nil, err
	}
	pw, err := a.password(false)
	if err != nil {
		return nil, err
	}
	kc, err := a.keyCacheOf()
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, be, repo.Options{Password: pw, CacheDir: a.cacheDir, Logger: a.log, Lock: lock, KeyCache: kc})
	if err == nil {
		a.opened = append(a.opened, r)
	}
	return r, err
}

// lockLost returns why a lock of a repository the command opened was lost
// while held (repo.ErrLockLost), or nil.
func (a *app) lockLost() error {
	for _, r := range a.opened {
		if err := r.LockLost(); err != nil {
			return err
		}
	}
	return nil
}

// printf writes human output unless --quiet or --json.
func (a *app) printf(format string, args ...any) {
	if a.quiet || a.jsonOut {
		return
	}
	fmt.Fprintf(a.stdout, format, args...)
}

// emit prints v as JSON when --json is set.
func (a *app) emit(v any) error {
	if !a.jsonOut {
		return nil
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTTY reports whether progress bars make sense.
func (a *app) isTTY() bool {
	if a.noProgress || a.quiet || a.jsonOut {
		return false
	}
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
