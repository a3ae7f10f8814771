package walreplay

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"strings"
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

// TestDigestGatheredAside: a state of more live bytes than one gather block
// is digested with the payloads gathered on another goroutine (digest):
// the digest is the model's, with payloads larger than a block among
// them, read with pread and through the maps, and from a copying state;
// DigestVerified finds a payload that does not start with its id.
func TestDigestGatheredAside(t *testing.T) {
	es := genEntries(9, 900, 256)
	big := strings.Repeat("x", digestBlock+1000)
	es = append(es, store(901, 1_800_000_000_000_000_000, rec("mem-big", 0.5, big, 1, 2)), store(902, 1_800_000_000_000_000_001, rec("mem-big2", 0.5, big+big, 3)))
	dir := t.TempDir()
	writeLog(t, dir, 1<<20, es)
	l, m := mustOpenLog(t, dir), modelOf(t, es)
	c := NewState()
	if _, err := l.Replay(context.Background(), Target{}, c); err != nil {
		t.Fatal(err)
	}
	s := NewZeroCopyState()
	defer s.Close()
	if _, err := l.Replay(context.Background(), Target{}, s); err != nil {
		t.Fatal(err)
	}
	if s.Bytes() <= 4*digestBlock {
		t.Fatalf("%d live bytes: too few for the gathering goroutine", s.Bytes())
	}
	for name, st := range map[string]*State{"copying": c, "zero-copy": s} {
		if got, want := hexDigest(st.Digest()), m.digest(); got != want {
			t.Fatalf("%s: digest %s, want %s", name, got, want)
		}
		d, err := st.DigestVerified()
		if err != nil || hex.EncodeToString(d[:]) != m.digest() {
			t.Fatalf("%s: DigestVerified %x, %v", name, d, err)
		}
	}
	// Drop every descriptor: the pass reads through the maps.
	for i, f := range s.maps.files {
		if f != nil {
			_ = f.Close()
			s.maps.files[i] = nil
			s.maps.open--
		}
	}
	if got, want := hexDigest(s.Digest()), m.digest(); got != want {
		t.Fatalf("through the maps: digest %s, want %s", got, want)
	}
	// A payload under another id than its own: the check stops the pass.
	i := c.ids["mem-big"]
	delete(c.ids, "mem-big")
	c.ids["mem-zzz"] = i
	if _, err := c.DigestVerified(); !errors.Is(err, ErrCheckpointStale) {
		t.Fatalf("payload under another id: %v, want ErrCheckpointStale", err)
	}
}
