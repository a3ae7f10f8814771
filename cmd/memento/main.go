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
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}
