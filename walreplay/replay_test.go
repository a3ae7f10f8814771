package walreplay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestReplayMatchesModel replays a generated multi-segment log to every
// entry's timestamp (and one ns either side) and to every sequence, and
// compares with the independent model.
func TestReplayMatchesModel(t *testing.T) {
	es := genEntries(1, 400, 4)
	dir := t.TempDir()
	writeLog(t, dir, 2048, es)
	l, err := OpenLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Segments()) < 10 {
		t.Fatalf("want many segments, got %d", len(l.Segments()))
	}
	ctx := context.Background()
	check := func(tg Target) {
		t.Helper()
		m := model{}
		var want Position
		for _, e := range es {
			if tg.beyond(e) {
				break
			}
			m.apply(t, e)
			want = Position{e.Seq, e.TimestampNS}
		}
		for _, s := range []*State{NewState(), NewZeroCopyState()} {
			pos, err := l.Replay(ctx, tg, s)
			if err != nil {
				t.Fatalf("%s: %v", tg, err)
			}
			if pos != want || s.Len() != len(m) || hexDigest(s.Digest()) != m.digest() {
				t.Fatalf("%s (zero-copy %v): pos %+v len %d, want pos %+v len %d (or digest differs)", tg, s.zeroCopy, pos, s.Len(), want, len(m))
			}
			// The state keeps working after more entries arrive by Apply.
			s.Apply(&Entry{Seq: pos.Seq + 1, TimestampNS: pos.TimestampNS, Type: EpisodeStore, Payload: AppendRecord(nil, rec("zz-extra", 1, "x"))})
			if r, ok := s.Get("zz-extra"); !ok || r.Content != "x" {
				t.Fatal("apply after replay")
			}
			s.Close()
			if s.Len() != 0 {
				t.Fatal("Close must empty the state")
			}
		}
	}
	for i, e := range es {
		if i%7 == 0 || i < 30 {
			check(Target{AtTime: ptr(e.TimestampNS - 1)})
			check(Target{AtTime: ptr(e.TimestampNS)})
			check(Target{AtTime: ptr(e.TimestampNS + 1)})
			check(Target{ToSeq: ptr(e.Seq)})
		}
	}
	check(Target{})
	check(Target{ToSeq: ptr(uint64(0))})
	check(Target{ToSeq: ptr(uint64(1 << 40))})
}

// TestReplaySharedTimestamps: entries sharing a timestamp are all in or all
// out of a time target, even when they straddle a segment boundary.
func TestReplaySharedTimestamps(t *testing.T) {
	r := func(id string) *Record { return rec(id, 0.5, id) }
	es := []*Entry{store(1, 10, r("a")), store(2, 20, r("b")), store(3, 20, r("c")),
		store(4, 20, r("d")), store(5, 30, r("e"))}
	dir := writeSegments(t, map[string][]byte{
		SegmentName(1): encode(es[:3]...),
		SegmentName(4): encode(es[3:]...),
	})
	l, _ := OpenLog(dir)
	ctx := context.Background()
	for _, tc := range []struct {
		at   int64
		n    int
		pos  uint64
		seg  int
		off  int64
		seek error
	}{
		{9, 0, 0, 0, 0, nil},
		{10, 1, 1, 0, 0, nil},
		{11, 1, 1, 0, offsetOf(es, 1), nil},
		{19, 1, 1, 0, offsetOf(es, 1), nil},
		{20, 4, 4, 0, offsetOf(es, 1), nil},
		{21, 4, 4, 1, offsetOf(es[3:], 1), nil},
		{29, 4, 4, 1, offsetOf(es[3:], 1), nil},
		{30, 5, 5, 1, offsetOf(es[3:], 1), nil},
		{31, 5, 5, 0, 0, ErrNotFound},
	} {
		s := NewState()
		pos, err := l.Replay(ctx, Target{AtTime: ptr(tc.at)}, s)
		if err != nil || s.Len() != tc.n || pos.Seq != tc.pos {
			t.Errorf("at %d: len %d pos %d err %v, want len %d pos %d", tc.at, s.Len(), pos.Seq, err, tc.n, tc.pos)
		}
		// SeekTime finds the first entry at or after tc.at.
		seg, off, err := l.SeekTime(ctx, tc.at)
		if tc.seek != nil {
			if !errors.Is(err, tc.seek) {
				t.Errorf("SeekTime(%d): %v, want %v", tc.at, err, tc.seek)
			}
			continue
		}
		if err != nil || seg != tc.seg || off != tc.off {
			t.Errorf("SeekTime(%d) = %d, %d, %v; want %d, %d", tc.at, seg, off, err, tc.seg, tc.off)
		}
	}
	// A boundary with the shared timestamp on both sides: the first entry at
	// 20 is in the first segment.
	if seg, off, err := l.SeekTime(ctx, 20); seg != 0 || off != offsetOf(es, 1) || err != nil {
		t.Fatalf("SeekTime(20) = %d %d %v", seg, off, err)
	}
	for seq, want := range map[uint64][2]int64{1: {0, 0}, 3: {0, offsetOf(es, 2)}, 4: {1, 0}, 5: {1, offsetOf(es[3:], 1)}} {
		seg, off, err := l.SeekSeq(ctx, seq)
		if err != nil || int64(seg) != want[0] || off != want[1] {
			t.Errorf("SeekSeq(%d) = %d %d %v, want %v", seq, seg, off, err, want)
		}
	}
	if _, _, err := l.SeekSeq(ctx, 6); !errors.Is(err, ErrNotFound) {
		t.Errorf("SeekSeq(6): %v, want ErrNotFound", err)
	}
}

// TestLogHolds: Holds finds an entry by sequence and timestamp, in the
// first segment, past a segment boundary and at the last entry; the same
// sequence written at another time (a history rewritten after a restore),
// a sequence the log skips and one past its end are not held.
func TestLogHolds(t *testing.T) {
	r := func(id string) *Record { return rec(id, 0.5, id) }
	es := []*Entry{store(1, 10, r("a")), store(2, 20, r("b")), store(4, 20, r("d")), store(5, 30, r("e"))}
	dir := writeSegments(t, map[string][]byte{
		SegmentName(1): encode(es[:2]...),
		SegmentName(4): encode(es[2:]...),
	})
	l, err := OpenLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		seq  uint64
		ts   int64
		want bool
	}{
		{1, 10, true}, {2, 20, true}, {4, 20, true}, {5, 30, true},
		{1, 11, false}, {5, 31, false}, {3, 20, false}, {6, 30, false},
	} {
		if got, err := l.Holds(ctx, tc.seq, tc.ts); err != nil || got != tc.want {
			t.Errorf("Holds(%d, %d) = %v, %v; want %v", tc.seq, tc.ts, got, err, tc.want)
		}
	}
}

// TestSeekTimeReadsFewSegments checks the binary search: SeekTime over many
// segments must agree with a linear answer.
func TestSeekMatchesLinearScan(t *testing.T) {
	es := genEntries(2, 600, 2)
	dir := t.TempDir()
	writeLog(t, dir, 1500, es)
	l, _ := OpenLog(dir)
	segs := l.Segments()
	// position (segment index, offset) of every entry, from a linear scan.
	type loc struct {
		seg int
		off int64
	}
	var locs []loc
	for i := range segs {
		f, r, _ := l.openSegment(i)
		sr := NewSegmentReader(r, segs[i].Name)
		for {
			if _, err := sr.Next(); err != nil {
				break
			}
			locs = append(locs, loc{i, sr.Offset()})
		}
		f.Close()
	}
	ctx := context.Background()
	for i := 0; i < len(es); i += 3 {
		ts := es[i].TimestampNS
		j := i
		for j > 0 && es[j-1].TimestampNS >= ts {
			j--
		}
		seg, off, err := l.SeekTime(ctx, ts)
		if err != nil || (loc{seg, off}) != locs[j] {
			t.Fatalf("SeekTime(%d) = %d,%d %v; want %v (entry %d)", ts, seg, off, err, locs[j], j)
		}
		seg, off, err = l.SeekSeq(ctx, es[i].Seq)
		if err != nil || (loc{seg, off}) != locs[i] {
			t.Fatalf("SeekSeq(%d) = %d,%d %v; want %v", es[i].Seq, seg, off, err, locs[i])
		}
	}
}

func TestReplayCompactedRun(t *testing.T) {
	dir := "testdata/golden/compacted"
	l, err := OpenLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Inside the run 1..5: not derivable.
	for _, tg := range []Target{{AtTime: ptr(int64(999))}, {AtTime: ptr(int64(2000))}, {AtTime: ptr(int64(2999))},
		{ToSeq: ptr(uint64(1))}, {ToSeq: ptr(uint64(3))}, {ToSeq: ptr(uint64(4))}} {
		if _, err := l.Replay(ctx, tg, NewState()); !errors.Is(err, ErrNotDerivable) {
			t.Errorf("%s: got %v, want ErrNotDerivable", tg, err)
		}
	}
	// Before the run: the empty state.
	s := NewState()
	if pos, err := l.Replay(ctx, Target{ToSeq: ptr(uint64(0))}, s); err != nil || pos != (Position{}) || s.Len() != 0 {
		t.Errorf("seq 0: %v %+v %d", err, pos, s.Len())
	}
	// At the marker: the run's end position.
	if pos, err := l.Replay(ctx, Target{ToSeq: ptr(uint64(5))}, NewState()); err != nil || pos != (Position{5, 3000}) {
		t.Errorf("seq 5: %v %+v", err, pos)
	}
	sum, err := l.Verify(ctx)
	if err != nil || sum.Compacted != 1 || sum.FirstSeq != 3 || sum.LastSeq != 8 || sum.Entries != 6 {
		t.Errorf("verify: %+v %v", sum, err)
	}
}

// TestCompactPreservesState compacts runs of a generated log, in place, and
// checks that the state at and after the run's end is unchanged, that the
// log verifies, and that a run whose delete would be lost is refused.
func TestCompactPreservesState(t *testing.T) {
	es := genEntries(3, 500, 3)
	dir := t.TempDir()
	writeLog(t, dir, 3000, es)
	ctx := context.Background()
	l, _ := OpenLog(dir)
	segs := l.Segments()
	digestAt := func(l *Log, seq uint64) string {
		s := NewState()
		if _, err := l.Replay(ctx, Target{ToSeq: &seq}, s); err != nil {
			t.Fatal(err)
		}
		return hexDigest(s.Digest())
	}
	// The run 0..4 is the start of the log: always compactable.
	b := segs[5].FirstSeq - 1
	before := map[uint64]string{b: digestAt(l, b), b + 7: digestAt(l, b+7), es[len(es)-1].Seq: digestAt(l, es[len(es)-1].Seq)}
	var names []string
	for _, s := range segs[:5] {
		names = append(names, s.Name)
	}
	res, err := Compact(ctx, dir, names...)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstSeq != 1 || res.LastSeq != b {
		t.Fatalf("result %+v, want 1..%d", res, b)
	}
	l2, _ := OpenLog(dir)
	if got := len(l2.Segments()); got != len(segs)-4 {
		t.Fatalf("%d segments after compaction, want %d", got, len(segs)-4)
	}
	if _, err := l2.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	for seq, d := range before {
		if got := digestAt(l2, seq); got != d {
			t.Errorf("digest at %d changed by compaction", seq)
		}
	}
	// Compact again, the compacted segment plus the next two: still equal.
	segs2 := l2.Segments()
	res, err = Compact(ctx, dir, segs2[0].Name, segs2[1].Name, segs2[2].Name)
	if err != nil {
		t.Fatal(err)
	}
	l3, _ := OpenLog(dir)
	if got := digestAt(l3, es[len(es)-1].Seq); got != before[es[len(es)-1].Seq] {
		t.Errorf("digest at end changed by second compaction")
	}
	if _, err := Compact(ctx, dir, l3.Segments()[len(l3.Segments())-1].Name); err == nil {
		t.Errorf("compacting the newest segment must fail")
	}
	if _, err := Compact(ctx, dir, l3.Segments()[1].Name, l3.Segments()[3].Name); err == nil {
		t.Errorf("compacting non-consecutive segments must fail")
	}
}

func TestCompactRefusesLostDelete(t *testing.T) {
	r := func(id string) *Record { return rec(id, 0.5, id) }
	dir := writeSegments(t, map[string][]byte{
		SegmentName(1): encode(store(1, 1, r("a")), store(2, 2, r("b"))),
		SegmentName(3): encode(del(3, 3, "a"), store(4, 4, r("c"))),
		SegmentName(5): encode(store(5, 5, r("d"))),
	})
	if _, err := Compact(context.Background(), dir, SegmentName(3)); err == nil {
		t.Fatal("compaction that would resurrect a deleted id must fail")
	}
	// Starting at the log's beginning it is fine.
	if _, err := Compact(context.Background(), dir, SegmentName(1), SegmentName(3)); err != nil {
		t.Fatal(err)
	}
}

// TestZeroCopyChurn replays a long churning log into a zero-copy state with
// segments small enough that mapped blocks die and the arena repacks while
// segments are mapped.
func TestZeroCopyChurn(t *testing.T) {
	es := genEntries(11, 3000, 64)
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es)
	l, _ := OpenLog(dir)
	m := modelOf(t, es)
	s := NewZeroCopyState()
	defer s.Close()
	// Copied records interleaved with mapped ones.
	for i := 0; i < 2000; i++ {
		s.Apply(store(1, 1, rec(fmt.Sprintf("mem-%06d", i), 0.5, strings.Repeat("q", 3000))))
	}
	if _, err := l.Replay(context.Background(), Target{}, s); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		id := fmt.Sprintf("mem-%06d", i)
		if _, ok := m[id]; !ok {
			s.Apply(del(1, 1, id))
		}
	}
	if hexDigest(s.Digest()) != m.digest() || s.Len() != len(m) {
		t.Fatal("zero-copy state differs from the model")
	}
	live := 0
	for _, b := range s.maps.regions {
		if b != nil {
			live++
		}
	}
	if live > len(l.Segments()) {
		t.Fatalf("%d live maps for %d segments", live, len(l.Segments()))
	}
}
