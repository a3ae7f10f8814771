package main

import (
	"context"
	"errors"

	"memento/repo"
)

// Exit codes. They are part of the interface: scripts and runbooks test them,
// so a code never changes meaning (docs/cli.md lists them).
const (
	exitOK            = 0   // everything asked for was done
	exitFailure       = 1   // an error not covered below (I/O, full disk, ...)
	exitUsage         = 2   // bad flags or arguments, missing password
	exitNoRepository  = 3   // no repository at --repo
	exitWrongPassword = 4   // no key opens with the password
	exitCorrupt       = 5   // stored or source data failed an integrity check
	exitLocked        = 6   // another process holds a conflicting lock, or the command lost its own
	exitNotFound      = 7   // snapshot, space or file does not exist
	exitUnrecoverable = 8   // the requested point in time cannot be recovered
	exitInterrupted   = 130 // Ctrl-C / SIGTERM: stopped cleanly, nothing partial kept
)

// usageError marks errors in how memento was called.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// errUnrecoverable is wrapped by point-in-time errors the CLI maps to exit 8.
var errUnrecoverable = errors.New("point in time cannot be recovered")

func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, repo.ErrLockLost):
		return exitLocked
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, repo.ErrNoRepository):
		return exitNoRepository
	case errors.Is(err, repo.ErrWrongPassword):
		return exitWrongPassword
	case errors.Is(err, repo.ErrCorrupt):
		return exitCorrupt
	case errors.Is(err, repo.ErrLocked):
		return exitLocked
	case errors.Is(err, repo.ErrNotFound):
		return exitNotFound
	case errors.Is(err, errUnrecoverable):
		return exitUnrecoverable
	}
	return exitFailure
}
