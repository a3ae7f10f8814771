package walreplay

import (
	"bytes"
	"context"
	"os"
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
	l := mustOpenLog(t, writeSegments(t, map[string][]byte{SegmentName(1): encode(es...)}))
	m := modelOf(t, es)
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

// TestZeroCopyDigestReadsKeptFiles: Digest of a zero-copy state reads the
// payloads with pread from the descriptors kept when the segments were
// mapped (no page faults, no resident pages), and those are the mapped
// files: replacing a segment file by another under its name afterwards
// changes nothing. Close releases the descriptors.
func TestZeroCopyDigestReadsKeptFiles(t *testing.T) {
	es := genEntries(5, 600, 32)
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es)
	l, m := mustOpenLog(t, dir), modelOf(t, es)
	s := NewZeroCopyState()
	defer s.Close()
	if _, err := l.Replay(context.Background(), Target{}, s); err != nil {
		t.Fatal(err)
	}
	if s.maps.open == 0 {
		t.Fatal("no segment descriptor kept for the digest pass")
	}
	preads := 0
	for id, i := range s.ids {
		got := make([]byte, s.slots[i].n)
		if s.readPayload(i, got) {
			preads++
			if want := s.payload(i); !bytes.Equal(got, want) {
				t.Fatalf("record %s: pread gave other bytes than the map holds", id)
			}
		}
	}
	if preads != s.Len() {
		t.Errorf("%d of %d live records readable with pread", preads, s.Len())
	}
	// Replace every segment by garbage of the same size under its name.
	for _, seg := range l.Segments() {
		tmp := seg.Path + ".new"
		if err := os.WriteFile(tmp, make([]byte, seg.Size), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, seg.Path); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := hexDigest(s.Digest()), m.digest(); got != want {
		t.Fatalf("digest %s after the segment files were replaced, want %s", got, want)
	}
	s.Close()
	if s.maps.open != 0 {
		t.Errorf("%d descriptors open after Close", s.maps.open)
	}
}
