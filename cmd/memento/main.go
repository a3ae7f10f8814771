// Command memento backs up Engram data directories into a deduplicated,
// encrypted repository, archives their WAL continuously, restores any space to
// any nanosecond of its history, and mounts snapshots read-only.
//
// Exit codes are documented in docs/cli.md and in exitcode.go.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT is set:
// backups stream, so a tight limit costs a little GC time and keeps memento a
// polite neighbour of the database it protects.
const defaultMemoryLimit = 200 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// MEMENTO_CPUPROFILE=FILE writes a CPU profile, for performance work on real data.
	if p := os.Getenv("MEMENTO_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil && pprof.StartCPUProfile(f) == nil {
			code := run(ctx, os.Args[1:])
			pprof.StopCPUProfile()
			f.Close()
			stop()
			os.Exit(code)
		}
	}
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
