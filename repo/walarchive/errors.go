package walarchive

import "errors"

// Sentinel errors of this package. Errors it returns wrap one of them where it
// applies, so callers use errors.Is; each says when it is returned.
var (
	// ErrWALGap is returned when the source WAL is missing sequences that were
	// never archived (segments deleted before an archive run saw them); the
	// error names the missing range. The segments before the gap were archived.
	ErrWALGap = errors.New("WAL sequence gap")
)
