package main

import (
	"context"
	"errors"

	"memento/repo"
	"memento/repo/backend/s3"
	"memento/repo/pitr"
	"memento/repo/restore"
	"memento/repo/walarchive"
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

// errUsage is what every *usageError is (errors.Is), for the exit code table.
var errUsage = errors.New("usage")

func (e *usageError) Is(target error) bool { return target == errUsage }

// exitCodes maps the packages' sentinel errors to exit codes: the first
// entry errors.Is matches wins, so the order is the precedence (a lost lock
// beats the cancellation it caused; a damaged stretch of WAL is corruption
// before it is an unrecoverable point in time). Anything else is 1.
var exitCodes = []struct {
	err  error
	code int
}{
	{repo.ErrLockLost, exitLocked},
	{context.Canceled, exitInterrupted},
	{errUsage, exitUsage},
	{walarchive.ErrAmbiguous, exitUsage},
	{restore.ErrIdentityMismatch, exitUsage},
	{restore.ErrUnsafeTarget, exitUsage},
	{restore.ErrPartialSpace, exitUsage},
	{walarchive.ErrNothingRewritten, exitUsage},
	{repo.ErrInvalidRef, exitUsage},
	{repo.ErrInvalidArgument, exitUsage},
	{repo.ErrKeyInUse, exitUsage},
	{repo.ErrNoRepository, exitNoRepository},
	{repo.ErrWrongPassword, exitWrongPassword},
	{repo.ErrCorrupt, exitCorrupt},
	{repo.ErrLocked, exitLocked},
	{repo.ErrRetained, exitLocked},
	{s3.ErrRetained, exitLocked},
	{repo.ErrNotFound, exitNotFound},
	{pitr.ErrUnrecoverable, exitUnrecoverable},
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	for _, m := range exitCodes {
		if errors.Is(err, m.err) {
			return m.code
		}
	}
	return exitFailure
}
