package repo

import (
	"errors"
	"fmt"
)

// Sentinel errors of the storage core; the CLI maps them to exit codes. Errors
// returned by this package and the feature packages under repo/ wrap one of
// them where it applies, so callers use errors.Is; each says when it is
// returned.
var (
	// ErrNoRepository is returned by Open when the location holds no memento
	// repository (no config file).
	ErrNoRepository = errors.New("no repository")
	// ErrWrongPassword is returned by Open when no key file of the repository
	// opens with the password.
	ErrWrongPassword = errors.New("wrong password")
	// ErrCorrupt is returned when stored bytes fail verification: a hash, MAC,
	// signature or structural check (a *CorruptError names what failed).
	// Nothing derived from such bytes is ever returned.
	ErrCorrupt = errors.New("integrity check failed")
	// ErrNotFound is returned when a named snapshot, space, blob or file does
	// not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked is returned by Lock when another process holds a conflicting
	// lock; the error names the holder.
	ErrLocked = errors.New("repository is locked")
	// ErrLockLost is returned when a lock held by a command was lost: it
	// could not be refreshed for so long that other processes would soon
	// deem it stale, or another process removed it. The command stopped
	// (Lock.Context was cancelled) and kept nothing partial.
	ErrLockLost = errors.New("repository lock lost")
	// ErrInvalidRef is returned when a snapshot reference is neither "latest"
	// nor at least 4 hex digits of a snapshot ID, or is a prefix of several.
	ErrInvalidRef = errors.New("invalid snapshot reference")
	// ErrInvalidArgument is returned when a request cannot be done as asked
	// whatever the repository holds (two backup sources of the same name,
	// an empty password for a new key): the caller must ask differently.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnsafePath is returned when a tree entry would escape the restore
	// target (a name with a slash, "..", or a symlink where a directory must be).
	ErrUnsafePath = errors.New("unsafe path")
	// ErrFormat is returned when a file is of a format version this binary does
	// not know (written by a newer memento).
	ErrFormat = errors.New("unsupported format")
	// ErrMarkedDamaged is returned, together with the snapshot, by a backup
	// that found its source damaged (a WAL that does not verify, a checkpoint
	// beyond the WAL's end), saved every byte as it is and marked the
	// snapshot (Manifest.Damage). It wraps ErrCorrupt.
	ErrMarkedDamaged = fmt.Errorf("%w: source data damaged", ErrCorrupt)
	// ErrRetained is returned by forget and prune (CheckDeletable) when a
	// file they would delete is under a retention the storage enforces (S3
	// Object Lock) that these credentials cannot lift. They deleted
	// nothing; the error names the file, the mode and the date.
	ErrRetained = errors.New("under retention")
)

// CorruptError names exactly what failed verification, so an operator can tell
// which pack, blob, snapshot or file is damaged.
type CorruptError struct {
	What   string // e.g. "pack 3fa2c1d0", "snapshot 9a8b7c6d"
	Detail string // e.g. "blob 11aa22bb: hash mismatch"
	Err    error  // underlying cause, may be nil
}

func (e *CorruptError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.What, e.Detail, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.What, e.Detail)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true for every CorruptError.
func (e *CorruptError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrCorrupt, e.Err}
	}
	return []error{ErrCorrupt}
}

func Corruptf(what, format string, args ...any) error {
	return &CorruptError{What: what, Detail: fmt.Sprintf(format, args...)}
}
