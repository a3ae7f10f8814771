package walreplay

import (
	"errors"
	"fmt"
)

// Sentinel errors, checked with errors.Is. Every validation failure is a
// *CorruptError whose Unwrap returns one of the first three.
var (
	// ErrCorrupt: the log is damaged in a way a crash cannot explain (bad
	// magic, CRC mismatch before the end, bad header or payload, timestamps
	// going backwards, a segment name that disagrees with its first entry).
	ErrCorrupt = errors.New("walreplay: corrupt WAL")
	// ErrTornTail: a segment ends inside an entry, or its last entry fails its
	// CRC. That is what a crash leaves at the end of the newest segment, where
	// Log treats it as the silent end of the log; anywhere else Log reports it
	// as ErrCorrupt.
	ErrTornTail = errors.New("walreplay: torn tail")
	// ErrGap: a sequence number is missing or repeated outside a compacted run.
	ErrGap = errors.New("walreplay: sequence gap")
	// ErrNotDerivable: a replay target falls strictly inside a compacted run,
	// whose intermediate states no longer exist.
	ErrNotDerivable = errors.New("walreplay: state not derivable inside a compacted run")
	// ErrNotFound: a seek target lies after the end of the log.
	ErrNotFound = errors.New("walreplay: no such entry")
)

// CorruptError locates a validation failure: the segment file, the byte
// offset of the entry (or of the damage, for a short tail) and its sequence.
// Seq is the sequence from the entry's header when the header is intact, and
// otherwise the sequence expected at that place (0 when unknown).
type CorruptError struct {
	Segment string // file name, e.g. wal-0000000000000001.log
	Offset  int64  // byte offset of the entry within the segment
	Seq     uint64
	Reason  string // human-readable, e.g. "crc mismatch"
	Err     error  // ErrCorrupt, ErrGap or ErrTornTail
}

// Error formats as "segment wal-...log offset 123 seq 45: crc mismatch".
func (e *CorruptError) Error() string {
	return fmt.Sprintf("segment %s offset %d seq %d: %s", e.Segment, e.Offset, e.Seq, e.Reason)
}

// Unwrap returns the sentinel: ErrCorrupt, ErrGap or ErrTornTail.
func (e *CorruptError) Unwrap() error { return e.Err }
