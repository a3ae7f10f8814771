// Command engram-sim writes realistic Engram data directories and keeps
// writing them like a live database, recording ground truth (state digests
// at known sequences) so that backup, WAL archiving and point-in-time
// recovery can be checked against something other than themselves.
//
// The Engram database is not part of this repository; the simulator is the
// only producer of Engram data dirs for tests, the demo and benchmarks, so
// it writes every file kind the real layout has (WAL segments, the warm page
// file, cold columnar segments, hot files, checkpoint.json, metadata.json)
// with the update pattern each kind really has (append, rewrite in place,
// write once, rewrite wholesale, atomic replace).
//
// Subcommands: generate, run, mutate, truth, serve. Exit codes: 0 success,
// 1 error, 2 usage error, 3 simulated crash (run --crash-after).
//
// serve (serve.go, serve_tiers.go) is a running Engram to recover into, for
// disaster-recovery drills and verify L4: "engram-sim serve --data-dir D
// [--listen 127.0.0.1:7411] [--ready-file F] [--tier-check full|quick|off]"
// opens D read-only, replays every space's WAL from its first entry exactly
// as truth does (same digest as "truth --dir D --space S" and as memento's
// restore), checks checkpoint.json against the WAL and the hot, warm and
// cold files' structure and CRCs, and answers JSON over HTTP:
//
//	GET /api/v1/system/health              200 {"status":"healthy","loaded":true,"spaces":N,...};
//	                                       503 {"status":"loading"|"unhealthy","reason":...,"problems":[...]}
//	GET /api/v1/spaces                     per space: last_seq, last_timestamp_ns, entries, memories, digest, checkpoint, status
//	GET /api/v1/spaces/{id}                one space
//	GET /api/v1/spaces/{id}/digest         {"space","sequence","timestamp_ns","digest","entries","memories"}
//	GET /api/v1/spaces/{id}/count          {"space","sequence","count"}
//	GET /api/v1/spaces/{id}/confidence     {"space","sequence","buckets":[...]} (?buckets=10)
//	GET /api/v1/spaces/{id}/memories/{mid} the memory, or 404 when absent or deleted
//
// It prints "listening on ADDR" once it accepts connections (port 0 allowed),
// then "healthy: ..." or "unhealthy: REASON" once loaded; SIGINT and SIGTERM
// shut it down cleanly (exit 0). See docs/engram-format.md, "engram-sim serve".
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// Exit codes, documented in the package comment.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	exitCrash = 3
)

// exitCodeError carries a specific exit code up to main so that commands
// return errors instead of calling os.Exit themselves (which keeps them
// testable and lets deferred cleanup run).
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// errUsage marks bad flag values; main maps it to exit code 2.
var errUsage = errors.New("usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "engram-sim",
		Short: "Write realistic Engram data dirs with ground truth",
		Long: `engram-sim writes Engram data directories (WAL v1 segments, warm page file,
cold segments, hot files, checkpoint.json, metadata.json) for tests, the demo
and benchmarks, and records ground-truth state digests so that replays and
restores can be checked.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w", errUsage, err)
	})
	var cpuProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to FILE (for performance work)")
	root.PersistentFlags().MarkHidden("cpuprofile")
	var stopProfile func()
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if cpuProfile == "" {
			return nil
		}
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return nil
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if stopProfile != nil {
			stopProfile()
		}
	}
	root.AddCommand(newGenerateCmd(), newRunCmd(), newMutateCmd(), newTruthCmd(), newServeCmd())
	return root
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	os.Exit(execute(os.Args[1:]))
}

// execute runs the CLI with args and returns the process exit code.
func execute(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "engram-sim: %v\n", err)
	var ce *exitCodeError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, errUsage):
		return exitUsage
	default:
		return exitError
	}
}
