package replicate

import "errors"

// Sentinel errors of this package. Errors it returns wrap one of them where it
// applies, so callers use errors.Is; each says when it is returned.
var (
	// ErrReplicaMismatch is returned when the destination already holds a
	// different repository (another config), which replication must never mix
	// into. Nothing was copied.
	ErrReplicaMismatch = errors.New("destination holds a different repository")
)
