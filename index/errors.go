package index

import "errors"

// Sentinel errors, checked with errors.Is. Every error that wraps them also
// names the cache file, so the CLI can print it and offer
// `memento index rebuild`.
var (
	// ErrCorrupt: the file is not a readable memento index (damaged, truncated,
	// or some other bbolt database).
	ErrCorrupt = errors.New("index file is corrupt or not a memento index")
	// ErrVersion: the file was written by a memento with another index format.
	ErrVersion = errors.New("index format version mismatch")
	// ErrForeign: the file caches another repository (see Bind).
	ErrForeign = errors.New("index file belongs to another repository")
	// ErrBusy: another process kept the file locked past the lock timeout.
	ErrBusy = errors.New("index file is locked by another process")
)

// rebuildHint ends every error the user can fix by rebuilding the cache.
const rebuildHint = `run "memento index rebuild" to recreate it`
