package walreplay

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// corruptBase is a valid two-segment log: 1..3 in the first, 4..6 in the
// second (newest). Every record entry is 32 + 28 bytes; the delete is 35 and
// the marker (32).
func corruptBase() (seg1, seg2 []*Entry) {
	r := func(id string) *Record { return rec(id, 0.5, "content", 1, 2) }
	seg1 = []*Entry{store(1, 100, r("a")), store(2, 100, r("b")), upd(3, 200, r("a"))}
	seg2 = []*Entry{del(4, 300, "b"), store(5, 300, r("c")), marker(6, 400)}
	return
}

// offsetOf returns the byte offset of es[i] in the encoding of es.
func offsetOf(es []*Entry, i int) int64 {
	return int64(len(encode(es[:i]...)))
}

func TestVerifyDetectsCorruption(t *testing.T) {
	s1, s2 := corruptBase()
	n1, n2 := SegmentName(1), SegmentName(4)
	clone := func(e *Entry) *Entry { c := *e; return &c }
	with := func(es []*Entry, i int, f func(*Entry)) []*Entry {
		out := make([]*Entry, len(es))
		copy(out, es)
		out[i] = clone(es[i])
		f(out[i])
		return out
	}
	flip := func(b []byte, off int64) []byte { b[off] ^= 0x40; return b }

	tests := []struct {
		name    string
		files   map[string][]byte
		want    error
		seg     string
		off     int64
		seq     uint64
		reason  string
		torn    bool // no error: a silent torn tail
		entries int64
	}{
		{name: "valid", files: map[string][]byte{n1: encode(s1...), n2: encode(s2...)}, entries: 6},
		{name: "bad magic", want: ErrCorrupt, seg: n1, off: offsetOf(s1, 1), seq: 2, reason: "bad magic 0xdeadbeee",
			files: map[string][]byte{n1: func() []byte { b := encode(s1...); b[offsetOf(s1, 1)] ^= 1; return b }(), n2: encode(s2...)}},
		{name: "crc mismatch in payload", want: ErrCorrupt, seg: n1, off: offsetOf(s1, 1), seq: 2, reason: "crc mismatch",
			files: map[string][]byte{n1: flip(encode(s1...), offsetOf(s1, 1)+HeaderSize+3), n2: encode(s2...)}},
		{name: "crc mismatch in header field", want: ErrCorrupt, seg: n2, off: 0, seq: 4 ^ 0x40, reason: "crc mismatch",
			files: map[string][]byte{n1: encode(s1...), n2: flip(encode(s2...), 8)}},
		{name: "crc mismatch in last entry of a sealed segment", want: ErrCorrupt, seg: n1, off: offsetOf(s1, 2), seq: 3,
			reason: "sealed segment ends in a torn tail: crc mismatch in last entry",
			files:  map[string][]byte{n1: flip(encode(s1...), offsetOf(s1, 3)-1), n2: encode(s2...)}},
		{name: "crc mismatch in last entry of the newest segment", torn: true, entries: 5, seg: n2, off: offsetOf(s2, 2),
			files: map[string][]byte{n1: encode(s1...), n2: flip(encode(s2...), offsetOf(s2, 2)+4)}},
		{name: "incomplete entry at end of newest", torn: true, entries: 5, seg: n2, off: offsetOf(s2, 2),
			files: map[string][]byte{n1: encode(s1...), n2: encode(s2...)[:offsetOf(s2, 2)+5]}},
		{name: "incomplete payload at end of newest", torn: true, entries: 4, seg: n2, off: offsetOf(s2, 1),
			files: map[string][]byte{n1: encode(s1...), n2: encode(s2...)[:offsetOf(s2, 2)-1]}},
		{name: "incomplete entry at end of sealed segment", want: ErrCorrupt, seg: n1, off: offsetOf(s1, 2), seq: 3,
			reason: "sealed segment ends in a torn tail: incomplete entry (40 of 60 bytes)",
			files:  map[string][]byte{n1: encode(s1...)[:offsetOf(s1, 2)+40], n2: encode(s2...)}},
		{name: "garbage after last entry of newest", want: ErrCorrupt, seg: n2, off: offsetOf(s2, 3), seq: 7, reason: "bad magic in final 3 bytes",
			files: map[string][]byte{n1: encode(s1...), n2: append(encode(s2...), 0, 0, 0)}},
		{name: "zeroed tail of newest", want: ErrCorrupt, seg: n2, off: offsetOf(s2, 3), seq: 7, reason: "bad magic 0x00000000",
			files: map[string][]byte{n1: encode(s1...), n2: append(encode(s2...), make([]byte, 64)...)}},
		{name: "sequence gap", want: ErrGap, seg: n1, off: offsetOf(s1, 2), seq: 4, reason: "sequence gap: expected 3, got 4",
			files: map[string][]byte{n1: encode(with(s1, 2, func(e *Entry) { e.Seq = 4 })...), n2: encode(s2...)}},
		{name: "sequence repeat", want: ErrGap, seg: n1, off: offsetOf(s1, 2), seq: 2, reason: "sequence repeat: expected 3, got 2",
			files: map[string][]byte{n1: encode(with(s1, 2, func(e *Entry) { e.Seq = 2 })...), n2: encode(s2...)}},
		{name: "gap between segments", want: ErrGap, seg: SegmentName(5), off: 0, seq: 5, reason: "sequence gap: segment starts at 5, previous segment ended at 3",
			files: map[string][]byte{n1: encode(s1...), SegmentName(5): encode(s2[1:]...)}},
		{name: "repeat between segments", want: ErrGap, seg: SegmentName(3), off: 0, seq: 3, reason: "sequence repeat: segment starts at 3, previous segment ended at 3",
			files: map[string][]byte{n1: encode(s1...), SegmentName(3): encode(append([]*Entry{s1[2]}, s2...)...)}},
		{name: "timestamp backwards", want: ErrCorrupt, seg: n2, off: offsetOf(s2, 1), seq: 5, reason: "timestamp goes backwards: 299 after 300",
			files: map[string][]byte{n1: encode(s1...), n2: encode(with(s2, 1, func(e *Entry) { e.TimestampNS = 299 })...)}},
		{name: "timestamp backwards across segments", want: ErrCorrupt, seg: n2, off: 0, seq: 4, reason: "timestamp goes backwards: 199 after 200",
			files: map[string][]byte{n1: encode(s1...), n2: encode(with(s2, 0, func(e *Entry) { e.TimestampNS = 199 })...)}},
		{name: "segment name mismatch", want: ErrCorrupt, seg: SegmentName(2), off: 0, seq: 1, reason: "segment name says first sequence 2 but first entry has 1",
			files: map[string][]byte{SegmentName(2): encode(s1...)}},
		{name: "payload too long", want: ErrCorrupt, seg: n1, off: offsetOf(s1, 1), seq: 2, reason: "payload length 67108865 exceeds 67108864",
			files: map[string][]byte{n1: func() []byte {
				b := encode(s1...)
				le.PutUint32(b[offsetOf(s1, 1)+4:], MaxPayload+1)
				return b
			}(), n2: encode(s2...)}},
		{name: "unknown entry type", want: ErrCorrupt, seg: n2, off: offsetOf(s2, 2), seq: 6, reason: "unknown entry type 5",
			files: map[string][]byte{n1: encode(s1...), n2: encode(with(s2, 2, func(e *Entry) { e.Type = 5 })...)}},
		{name: "reserved flag", want: ErrCorrupt, seg: n2, off: offsetOf(s2, 2), seq: 6, reason: "reserved flag bits set (0x0002)",
			files: map[string][]byte{n1: encode(s1...), n2: encode(with(s2, 2, func(e *Entry) { e.Flags = 2 })...)}},
		{name: "malformed record payload", want: ErrCorrupt, seg: n1, off: offsetOf(s1, 1), seq: 2, reason: "malformed payload: content length 7 but 6 bytes remain",
			files: map[string][]byte{n1: encode(with(s1, 1, func(e *Entry) { e.Payload = e.Payload[:len(e.Payload)-1] })...), n2: encode(s2...)}},
		{name: "empty id", want: ErrCorrupt, seg: n2, off: 0, seq: 4, reason: "malformed payload: empty id",
			files: map[string][]byte{n1: encode(s1...), n2: encode(with(s2, 0, func(e *Entry) { e.Payload = AppendDelete(nil, "") })...)}},
		{name: "marker with payload", want: ErrCorrupt, seg: n2, off: offsetOf(s2, 2), seq: 6, reason: "marker with 1-byte payload",
			files: map[string][]byte{n1: encode(s1...), n2: encode(with(s2, 2, func(e *Entry) { e.Payload = []byte{0} })...)}},
		{name: "compacted entry outside compacted segment", want: ErrCorrupt, seg: n2, off: offsetOf(s2, 1), seq: 5, reason: "COMPACTED entry outside a compacted segment",
			files: map[string][]byte{n1: encode(s1...), n2: encode(with(s2, 1, func(e *Entry) { e.Flags = FlagCompacted })...)}},
		{name: "compacted segment without marker", want: ErrCorrupt, seg: n1, off: offsetOf(s1, 2), seq: 3, reason: "compacted segment does not end with a COMPACTED marker",
			files: map[string][]byte{n1: encode(
				&Entry{Seq: 1, TimestampNS: 100, Type: EpisodeStore, Flags: FlagCompacted, Payload: s1[0].Payload},
				&Entry{Seq: 3, TimestampNS: 200, Type: EpisodeStore, Flags: FlagCompacted, Payload: s1[2].Payload},
			), n2: encode(s2...)}},
		{name: "empty sealed segment", want: ErrCorrupt, seg: n1, off: 0, seq: 1, reason: "empty sealed segment",
			files: map[string][]byte{n1: nil, n2: encode(s2...)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeSegments(t, tc.files)
			l, err := OpenLog(dir)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := l.Verify(context.Background())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if sum.Entries != tc.entries || sum.TornTail != tc.torn {
					t.Fatalf("summary %+v, want %d entries, torn %v", sum, tc.entries, tc.torn)
				}
				if tc.torn && (sum.TornSegment != tc.seg || sum.TornOffset != tc.off) {
					t.Fatalf("torn tail at %s:%d, want %s:%d", sum.TornSegment, sum.TornOffset, tc.seg, tc.off)
				}
				// Replay ends silently at the torn tail too, copying or
				// zero-copy, at the same entry.
				pos, err := l.Replay(context.Background(), Target{}, NewState())
				if err != nil {
					t.Fatalf("replay: %v", err)
				}
				zc := NewZeroCopyState()
				defer zc.Close()
				if zpos, err := l.Replay(context.Background(), Target{}, zc); err != nil || zpos != pos {
					t.Fatalf("zero-copy replay: at %+v, %v; copying replay at %+v", zpos, err, pos)
				}
				return
			}
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CorruptError", err)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want errors.Is %v", err, tc.want)
			}
			if ce.Segment != tc.seg || ce.Offset != tc.off || ce.Seq != tc.seq {
				t.Fatalf("got %s offset %d seq %d, want %s offset %d seq %d (%v)", ce.Segment, ce.Offset, ce.Seq, tc.seg, tc.off, tc.seq, err)
			}
			if !strings.HasPrefix(ce.Reason, tc.reason) {
				t.Fatalf("reason %q, want prefix %q", ce.Reason, tc.reason)
			}
			// Replay to the end meets the same problem, and a zero-copy
			// replay (which maps the segments but reads them) reports it in
			// the same words.
			_, rerr := l.Replay(context.Background(), Target{}, NewState())
			if !errors.Is(rerr, tc.want) {
				t.Fatalf("replay: got %v, want %v", rerr, tc.want)
			}
			zc := NewZeroCopyState()
			defer zc.Close()
			if _, zerr := l.Replay(context.Background(), Target{}, zc); zerr == nil || zerr.Error() != rerr.Error() {
				t.Fatalf("zero-copy replay: got %v, want %v", zerr, rerr)
			}
		})
	}
}

func TestCorruptErrorFormat(t *testing.T) {
	s1, s2 := corruptBase()
	b := encode(s1...)
	b[offsetOf(s1, 2)+HeaderSize] ^= 1
	dir := writeSegments(t, map[string][]byte{SegmentName(1): b, SegmentName(4): encode(s2...)})
	l, _ := OpenLog(dir)
	_, err := l.Verify(context.Background())
	const want = "segment wal-0000000000000001.log offset 120 seq 3: sealed segment ends in a torn tail: crc mismatch in last entry (stored 0x"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %q, want prefix %q", err, want)
	}
	b = encode(s1...)
	b[offsetOf(s1, 1)+HeaderSize] ^= 1
	dir = writeSegments(t, map[string][]byte{SegmentName(1): b})
	l, _ = OpenLog(dir)
	_, err = l.Verify(context.Background())
	const want2 = "segment wal-0000000000000001.log offset 60 seq 2: crc mismatch (stored 0x"
	if err == nil || !strings.HasPrefix(err.Error(), want2) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %q, want prefix %q", err, want2)
	}
}

func TestBadSegmentFileName(t *testing.T) {
	dir := writeSegments(t, map[string][]byte{"wal-00000000000000AB.log": nil, "notes.txt": nil})
	if _, err := OpenLog(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
}
