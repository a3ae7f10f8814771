package maintenance

import "errors"

// Sentinel errors of this package. Errors it returns wrap one of them where it
// applies, so callers use errors.Is; each says when it is returned.
var (
	// ErrWouldEmpty is returned when a forget would remove every snapshot of a
	// space (or of a host's paths) and was not explicitly allowed to. Nothing
	// was removed.
	ErrWouldEmpty = errors.New("refusing to remove every snapshot")
	// ErrPruneUnsafe is returned when prune finds the repository in a state
	// where deleting anything could lose data (a damaged index file, a missing
	// pack, a snapshot referencing data that is gone and not marked damaged).
	// Prune changed nothing.
	ErrPruneUnsafe = errors.New("prune refused: the repository needs attention first")
)
