package chunk

import "errors"

// Sentinel errors, checked with errors.Is.
var (
	// ErrInvalidID reports text that is not 64 hex digits.
	ErrInvalidID = errors.New("chunk: invalid id")
	// ErrCorrupt reports stored bytes that do not decode to a chunk.
	ErrCorrupt = errors.New("chunk: corrupt stored data")
	// ErrTooLarge reports stored bytes that would decode to more than allowed.
	ErrTooLarge = errors.New("chunk: decoded size exceeds limit")
	// ErrInvalidParams reports chunk-size parameters the chunker cannot use.
	ErrInvalidParams = errors.New("chunk: invalid params")
	// ErrClosed reports a Split on a closed Pipeline.
	ErrClosed = errors.New("chunk: pipeline closed")
)
