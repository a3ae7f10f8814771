package pitr

import "errors"

// Sentinel errors of this package. Errors it returns wrap one of them where it
// applies, so callers use errors.Is; each says when it is returned.
var (
	// ErrUnrecoverable is returned when a requested point in time lies outside
	// every recoverable range of the space: before the first backup, after the
	// last archived entry, or in a gap or a damaged stretch of the archive. The
	// error's text lists the ranges. Nothing was written.
	ErrUnrecoverable = errors.New("point in time cannot be recovered")
)
