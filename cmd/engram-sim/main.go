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
// Subcommands: generate, run, mutate, truth. Exit codes: 0 success, 1 error,
// 2 usage error, 3 simulated crash (run --crash-after).
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
