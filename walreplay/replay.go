package walreplay

import (
	"context"
	"fmt"
)

// Target says where a replay stops. With AtTime, entries with timestamp_ns
// <= *AtTime are applied; with ToSeq, entries with sequence <= *ToSeq; with
// both, entries satisfying both; with neither, everything.
type Target struct {
	AtTime *int64
	ToSeq  *uint64
}

// String describes the target for messages.
func (t Target) String() string {
	switch {
	case t.AtTime != nil && t.ToSeq != nil:
		return fmt.Sprintf("time %s and seq %d", FormatTime(*t.AtTime), *t.ToSeq)
	case t.AtTime != nil:
		return "time " + FormatTime(*t.AtTime)
	case t.ToSeq != nil:
		return fmt.Sprintf("seq %d", *t.ToSeq)
	}
	return "end of log"
}

// beyond reports whether e lies after the target.
func (t Target) beyond(e *Entry) bool {
	return t.AtTime != nil && e.TimestampNS > *t.AtTime || t.ToSeq != nil && e.Seq > *t.ToSeq
}

// Position is the last entry a replay applied (zero when none).
type Position struct {
	Seq         uint64
	TimestampNS int64
}

// Replay applies the log's entries, from the first, to s until the target,
// validating each entry it applies (CRC, header, payload, sequence
// continuity, timestamps, names, compacted runs) and returns the position
// reached. Entries after the target are not validated (with ToSeq, not even read);
// Verify checks all.
// A torn tail of the newest segment ends the log silently; a target beyond
// the end gives the state at the end (compare the Position to notice).
//
// A target strictly inside a compacted run (after the state before the run,
// before the run's closing marker) fails with ErrNotDerivable: the states
// in between were compacted away. For a time target this includes times at
// or after the entry preceding the run, since the compacted-away entries may
// have shared or followed that timestamp.
//
// s receives the entries in order; on error it holds a prefix of them. A
// State from NewZeroCopyState references the payloads in memory-mapped
// segments instead of copying them (see zerocopy.go for the trade-off).
func (l *Log) Replay(ctx context.Context, t Target, s *State) (Position, error) {
	var pos Position
	v := &validator{}
	zc := s
	if !s.zeroCopy {
		zc = nil
	}
	_, err := l.walk(ctx, 0, 0, v, zc, nil, func(seg int, off int64, e *Entry, mblk int) error {
		if t.beyond(e) {
			if e.Compacted() && !(t.ToSeq != nil && *t.ToSeq < l.segs[seg].FirstSeq) {
				return fmt.Errorf("segment %s offset %d seq %d: replay to %s: target inside the compacted run starting at seq %d: %w",
					l.segs[seg].Name, off, e.Seq, t, l.segs[seg].FirstSeq, ErrNotDerivable)
			}
			return errStop
		}
		if err := l.checkApply(v, s, seg, off, e, mblk); err != nil {
			return err
		}
		pos = Position{Seq: e.Seq, TimestampNS: e.TimestampNS}
		if t.ToSeq != nil && e.Seq == *t.ToSeq && !e.Compacted() {
			// The target entry is applied: nothing after it is read, so
			// damage after it (zeros a crash left) cannot fail the replay.
			return errStop
		}
		return nil
	})
	return pos, err
}

// checkApply validates e (found at offset off of segment seg) with v and
// applies it to s, by reference when it lies in mapped block mblk.
func (l *Log) checkApply(v *validator, s *State, seg int, off int64, e *Entry, mblk int) error {
	if err := v.check(off, e); err != nil {
		return err
	}
	var err error
	if mblk >= 0 {
		err = s.applyMapped(e, mblk, off+HeaderSize)
	} else {
		err = s.apply(e)
	}
	if err != nil {
		return &CorruptError{Segment: l.segs[seg].Name, Offset: off, Seq: e.Seq, Reason: err.Error(), Err: ErrCorrupt}
	}
	return nil
}
