package walreplay

import "fmt"

// validator enforces the rules between entries of a log, fed one segment
// after another: segment names agree with first sequences, sequences are
// consecutive (gaps only inside a compacted segment), timestamps never go
// backwards, and a compacted segment is all COMPACTED type-1 entries closed
// by one COMPACTED Marker. It keeps no entries, only the last position.
type validator struct {
	// checkPayloads also validates payload structure (Verify does; Replay
	// leaves it to State.Apply so the bytes are parsed once).
	checkPayloads bool

	seg       string
	segSeq    uint64 // sequence from the segment's name
	nInSeg    int64
	compacted bool // the current segment is a compacted run
	marked    bool // ... and its closing marker has been seen

	have    bool // any entry seen in the log
	lastSeq uint64
	lastTS  int64
}

func (v *validator) startSegment(name string, firstSeq uint64) {
	v.seg, v.segSeq, v.nInSeg, v.compacted, v.marked = name, firstSeq, 0, false, false
}

func (v *validator) fail(off int64, seq uint64, sentinel error, format string, a ...any) error {
	return &CorruptError{Segment: v.seg, Offset: off, Seq: seq, Reason: fmt.Sprintf(format, a...), Err: sentinel}
}

// check validates e, found at offset off of the current segment, and
// advances the position.
func (v *validator) check(off int64, e *Entry) error {
	if v.nInSeg == 0 {
		v.compacted = e.Compacted()
		if e.Seq < v.segSeq || !v.compacted && e.Seq != v.segSeq {
			return v.fail(off, e.Seq, ErrCorrupt, "segment name says first sequence %d but first entry has %d", v.segSeq, e.Seq)
		}
		if v.have && v.segSeq != v.lastSeq+1 {
			kind := "gap"
			if v.segSeq <= v.lastSeq {
				kind = "repeat"
			}
			return v.fail(off, e.Seq, ErrGap, "sequence %s: segment starts at %d, previous segment ended at %d", kind, v.segSeq, v.lastSeq)
		}
	}
	if e.Seq == 0 {
		return v.fail(off, e.Seq, ErrCorrupt, "sequence 0 (sequences start at 1)")
	}
	if v.compacted {
		switch {
		case !e.Compacted():
			return v.fail(off, e.Seq, ErrCorrupt, "entry without COMPACTED flag inside a compacted segment")
		case v.marked:
			return v.fail(off, e.Seq, ErrCorrupt, "entry after the closing marker of a compacted segment")
		case e.Type != EpisodeStore && e.Type != Marker:
			return v.fail(off, e.Seq, ErrCorrupt, "compacted entry of type %s (only EpisodeStore and Marker allowed)", e.Type)
		case v.nInSeg > 0 && (e.Seq < v.lastSeq || e.Seq == v.lastSeq && e.Type != Marker):
			// The marker carries b, which is also the sequence of the
			// last record when entry b was a store or update.
			return v.fail(off, e.Seq, ErrGap, "sequence repeat: %d after %d in a compacted segment", e.Seq, v.lastSeq)
		}
		v.marked = e.Type == Marker
	} else {
		if e.Compacted() {
			return v.fail(off, e.Seq, ErrCorrupt, "COMPACTED entry outside a compacted segment")
		}
		if v.have && e.Seq != v.lastSeq+1 {
			kind := "gap"
			if e.Seq <= v.lastSeq {
				kind = "repeat"
			}
			return v.fail(off, e.Seq, ErrGap, "sequence %s: expected %d, got %d", kind, v.lastSeq+1, e.Seq)
		}
	}
	if v.have && e.TimestampNS < v.lastTS {
		return v.fail(off, e.Seq, ErrCorrupt, "timestamp goes backwards: %d after %d", e.TimestampNS, v.lastTS)
	}
	if v.checkPayloads {
		if _, err := checkPayload(e.Type, e.Payload); err != nil {
			return v.fail(off, e.Seq, ErrCorrupt, "%v", err)
		}
	}
	v.have, v.lastSeq, v.lastTS = true, e.Seq, e.TimestampNS
	v.nInSeg++
	return nil
}

// endSegment checks what can only be checked once a segment has ended
// cleanly at offset size: a sealed segment is never empty, and a compacted
// one ends with its marker.
func (v *validator) endSegment(size int64, sealed bool) error {
	if v.nInSeg == 0 {
		if sealed {
			return v.fail(0, v.segSeq, ErrCorrupt, "empty sealed segment")
		}
		if v.have && v.segSeq != v.lastSeq+1 {
			return v.fail(0, v.segSeq, ErrGap, "sequence gap: empty segment named %d, previous segment ended at %d", v.segSeq, v.lastSeq)
		}
		return nil
	}
	if v.compacted && !v.marked {
		return v.fail(size, v.lastSeq, ErrCorrupt, "compacted segment does not end with a COMPACTED marker")
	}
	return nil
}
