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
	"runtime/trace"
	"syscall"
)

// defaultMemoryLimit is the Go heap's soft limit unless GOMEMLIMIT is set:
// backups stream, so a tight limit costs a little GC time and keeps memento a
// polite neighbour of the database it protects. Memory bounded by its owner
// moves it (slabmem.ShiftLimit): a restore's slabs take theirs off, a
// backup's pack buffers add theirs while it writes packs (at most 48 MiB).
const defaultMemoryLimit = 200 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfiles := startProfiles()
	code := run(ctx, os.Args[1:])
	stopProfiles()
	stop()
	os.Exit(code)
}

// startProfiles starts what the environment asks for, for performance work on
// real data: MEMENTO_CPUPROFILE=FILE writes a CPU profile (go tool pprof),
// MEMENTO_TRACE=FILE an execution trace (go tool trace: where a command
// waits rather than where it computes), MEMENTO_MEMPROFILE=FILE a heap
// profile at the run's highest live heap (startMemProfile). The returned func
// stops them.
func startProfiles() (stopAll func()) {
	var stops []func()
	if p := os.Getenv("MEMENTO_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if p := os.Getenv("MEMENTO_TRACE"); p != "" {
		if f, err := os.Create(p); err == nil && trace.Start(f) == nil {
			stops = append(stops, func() { trace.Stop(); f.Close() })
		}
	}
	if p := os.Getenv("MEMENTO_MEMPROFILE"); p != "" {
		stops = append(stops, startMemProfile(p))
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
