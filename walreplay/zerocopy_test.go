package walreplay

import (
	"context"
	"testing"
)

// TestZeroCopyMappingOutlivesDeadRecords: when the only live record of a
// segment dies before the reader is done with the segment (here a store then
// a delete of the same id, followed by more entries), the mapping must stay
// until the reader moves on; unmapping it early crashed the process.
func TestZeroCopyMappingOutlivesDeadRecords(t *testing.T) {
	es := []*Entry{
		store(1, 10, rec("a", 0.5, "first", 1, 2)),
		del(2, 20, "a"),
		store(3, 30, rec("b", 0.7, "second", 3, 4)),
		upd(4, 40, rec("b", 0.8, "second, updated", 5, 6)),
		store(5, 50, rec("c", 0.9, "third", 7, 8)),
	}
	dir := writeSegments(t, map[string][]byte{SegmentName(1): encode(es...)})
	l, err := OpenLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := model{}
	for _, e := range es {
		m.apply(t, e)
	}
	for _, zc := range []bool{false, true} {
		st := NewState()
		if zc {
			st = NewZeroCopyState()
		}
		pos, err := l.Replay(context.Background(), Target{}, st)
		if err != nil {
			t.Fatalf("zero-copy=%v: %v", zc, err)
		}
		if pos.Seq != 5 || st.Len() != 2 {
			t.Fatalf("zero-copy=%v: at seq %d with %d records, want 5 and 2", zc, pos.Seq, st.Len())
		}
		if got, want := hexDigest(st.Digest()), m.digest(); got != want {
			t.Fatalf("zero-copy=%v: digest %s, want %s", zc, got, want)
		}
		st.Close()
	}
}
