package walreplay

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// checkZeroCopyReplay replays dir four ways (copying Replay, zero-copy
// Replay, and zero-copy ReplayResume from nothing with and without the
// version-2 digest tracked entry by entry) and checks that all end at want
// with the model's records, the same version-1 and version-2 digests, and
// the same payload for every record.
func checkZeroCopyReplay(t *testing.T, dir string, applied []*Entry) {
	t.Helper()
	l, m := mustOpenLog(t, dir), modelOf(t, applied)
	var want Position
	if n := len(applied); n > 0 {
		want = Position{Seq: applied[n-1].Seq, TimestampNS: applied[n-1].TimestampNS}
	}
	ctx := context.Background()
	cp := NewState()
	if pos, err := l.Replay(ctx, Target{}, cp); err != nil || pos != want {
		t.Fatalf("copying replay: at %+v, %v; want %+v", pos, err, want)
	}
	v2, err := cp.DigestOf(DigestKindLtHash)
	if err != nil {
		t.Fatal(err)
	}
	if got := hexDigest(cp.Digest()); got != m.digest() {
		t.Fatalf("copying replay: digest %s, want %s", got, m.digest())
	}
	for _, way := range []string{"Replay", "ReplayResume", "ReplayResume+TrackLtHash"} {
		s := NewZeroCopyState()
		var pos Position
		var err error
		switch way {
		case "Replay":
			pos, err = l.Replay(ctx, Target{}, s)
		case "ReplayResume+TrackLtHash":
			if err := s.TrackLtHash(); err != nil {
				t.Fatal(err)
			}
			fallthrough
		default:
			pos, _, _, err = l.ReplayResume(ctx, nil, s)
		}
		if err != nil || pos != want {
			t.Fatalf("%s: at %+v, %v; want %+v", way, pos, err, want)
		}
		if s.Len() != len(m) {
			t.Fatalf("%s: %d records, want %d", way, s.Len(), len(m))
		}
		d1, err := s.DigestOf("")
		if err != nil || hexDigest(d1) != m.digest() {
			t.Fatalf("%s: digest v1 %x (%v), want %s", way, d1, err, m.digest())
		}
		d2, err := s.DigestOf(DigestKindLtHash)
		if err != nil || d2 != v2 {
			t.Fatalf("%s: digest v2 %x (%v), want %x", way, d2, err, v2)
		}
		for id := range m {
			got, _ := s.Payload(id)
			exp, _ := cp.Payload(id)
			if string(got) != string(exp) {
				t.Fatalf("%s: record %s differs from the copying replay's", way, id)
			}
		}
		s.Close()
	}
}

// TestZeroCopyReplayEdgeCases: the zero-copy replay, which reads each
// segment into a reused buffer and refers its records into the segment's
// map, ends in the copying replay's state on the cases where the buffer and
// the map could part: empty segments, torn tails, entries larger than the
// buffer (alone, torn, updated, deleted), and records updated and deleted
// from later segments.
func TestZeroCopyReplayEdgeCases(t *testing.T) {
	big := func(id string, n int, c byte) *Record { return rec(id, 0.25, strings.Repeat(string(c), n), 1, 2, 3) }
	r := func(id, c string) *Record { return rec(id, 0.5, c, 4, 5) }
	seg1 := []*Entry{store(1, 10, r("a", "first")), store(2, 10, big("big", readChunk+readChunk/2, 'x')), store(3, 20, r("c", "third"))}
	seg4 := []*Entry{upd(4, 30, big("big", 2*readChunk+7, 'y')), del(5, 40, "a"), upd(6, 40, r("c", "third, updated"))}
	seg7 := []*Entry{store(7, 50, big("huge", 3*readChunk, 'z')), del(8, 60, "big"), store(9, 70, r("a", "again"))}
	all := append(append(append([]*Entry{}, seg1...), seg4...), seg7...)
	small7, big8 := store(7, 50, r("d", "small")), store(8, 50, big("huge", 3*readChunk, 'z'))
	cat := func(a, b []byte) []byte { return append(append([]byte{}, a...), b...) }
	tests := []struct {
		name    string
		files   map[string][]byte
		applied []*Entry
	}{
		{"empty log", map[string][]byte{SegmentName(1): nil}, nil},
		{"empty newest segment", map[string][]byte{SegmentName(1): encode(seg1...), SegmentName(4): nil}, seg1},
		{"big entries across segments", map[string][]byte{SegmentName(1): encode(seg1...), SegmentName(4): encode(seg4...), SegmentName(7): encode(seg7...)}, all},
		{"torn tail", map[string][]byte{SegmentName(1): encode(seg1...), SegmentName(4): encode(seg4...),
			SegmentName(7): cat(encode(seg7[:2]...), encode(seg7[2])[:40])}, all[:8]},
		{"torn big entry", map[string][]byte{SegmentName(1): encode(seg1...), SegmentName(4): encode(seg4...),
			SegmentName(7): encode(seg7[0])[:readChunk+100]}, all[:6]},
		{"torn big entry after others", map[string][]byte{SegmentName(1): encode(seg1...), SegmentName(4): encode(seg4...),
			SegmentName(7): cat(encode(small7), encode(big8)[:readChunk+100])}, append(all[:6:6], small7)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkZeroCopyReplay(t, writeSegments(t, tc.files), tc.applied)
		})
	}
	t.Run("updates and deletes across many segments", func(t *testing.T) {
		es := genEntries(21, 3000, 16)
		dir := t.TempDir()
		writeLog(t, dir, 16<<10, es)
		if n := len(mustOpenLog(t, dir).Segments()); n < 20 {
			t.Fatalf("%d segments, want many", n)
		}
		checkZeroCopyReplay(t, dir, es)
	})
}

// TestZeroCopyThousandsOfSegments: a zero-copy replay of thousands of
// segments, each holding live records, neither runs out of descriptors
// (with the soft limit at 512, the State keeps at most maxPassFiles, and
// each walk closes its segment) nor loses a record: the records whose
// segment has no descriptor kept are read through the map.
func TestZeroCopyThousandsOfSegments(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1,500 segments")
	}
	var es []*Entry
	files := map[string][]byte{}
	for i := range 1500 {
		seq := uint64(i + 1)
		e := store(seq, int64(i), r0(fmt.Sprintf("m%05d", i)))
		if i%7 == 6 { // some records die from later segments
			e = upd(seq, int64(i), r0(fmt.Sprintf("m%05d", i-5)))
		}
		es = append(es, e)
		files[SegmentName(seq)] = encode(e) // one entry a segment
	}
	dir := writeSegments(t, files)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = min(lim.Cur, 512)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	checkZeroCopyReplay(t, dir, es)
	s := NewZeroCopyState()
	defer s.Close()
	if _, err := mustOpenLog(t, dir).Replay(context.Background(), Target{}, s); err != nil {
		t.Fatal(err)
	}
	if s.maps.open > maxPassFiles {
		t.Fatalf("%d descriptors kept, at most %d allowed", s.maps.open, maxPassFiles)
	}
}

func r0(id string) *Record { return rec(id, 0.5, "x", 1) }

// TestResumedWalkReadsTheMappedFile: a resumed zero-copy replay maps the
// newest segment it covers when it loads the checkpoint (State.load), and
// the walk then goes on in that segment, referring its records into that
// map. The bytes the walk checks must be the mapped file's, not whatever
// file has the segment's name when the walk opens it: here the segment is
// replaced (same covered prefix, other entries after it) between the load
// and the walk, as ReplayResume does them. The replay must apply the
// entries of the file it mapped, each record's payload (read through the
// map and with pread) holding that record.
func TestResumedWalkReadsTheMappedFile(t *testing.T) {
	es := genEntries(11, 400, 4)
	other := genEntries(12, 400, 4) // the same sequences, other records
	dir := t.TempDir()
	writeLog(t, dir, 64<<20, es[:200])
	s0 := NewZeroCopyState()
	_, cp, _, err := mustOpenLog(t, dir).ReplayResume(context.Background(), nil, s0)
	s0.Close()
	if err != nil || cp == nil {
		t.Fatalf("first replay: %v", err)
	}
	writeLog(t, dir, 64<<20, es[200:])
	l := mustOpenLog(t, dir)
	if len(l.segs) != 1 {
		t.Fatalf("%d segments, want 1", len(l.segs))
	}
	seg := l.segs[0]
	old, err := os.ReadFile(seg.Path)
	if err != nil {
		t.Fatal(err)
	}
	covered := cp.segs[0].size
	repl := append(old[:covered:covered], encode(other[200:]...)...)
	if int64(len(repl)) < seg.Size {
		t.Fatalf("replacement of %d bytes, shorter than the segment's %d", len(repl), seg.Size)
	}

	// ReplayResume's steps, with the replacement between load and walk.
	s := NewZeroCopyState()
	defer s.Close()
	v := &validator{}
	if err := cp.Fits(l); err != nil {
		t.Fatal(err)
	}
	if err := cp.checkTail(l); err != nil {
		t.Fatal(err)
	}
	if err := s.load(l, cp, v); err != nil {
		t.Fatal(err)
	}
	tmp := seg.Path + ".new"
	if err := os.WriteFile(tmp, repl, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, seg.Path); err != nil {
		t.Fatal(err)
	}
	_, err = l.walk(context.Background(), 0, covered, v, s, nil, func(seg int, off int64, e *Entry, mblk int) error {
		return l.checkApply(v, s, seg, off, e, mblk)
	})
	if err != nil {
		t.Fatal(err)
	}
	m := modelOf(t, es)
	if s.Len() != len(m) {
		t.Fatalf("%d records, want the mapped file's %d", s.Len(), len(m))
	}
	for id, want := range m {
		p, ok := s.Payload(id)
		if w := AppendRecord(nil, &want); !ok || !bytes.Equal(p, w) {
			t.Fatalf("record %q: %v, payload %.40x; want the mapped file's %.40x", id, ok, p, w)
		}
	}
	d, err := s.DigestVerified()
	if err != nil || hexDigest(d) != m.digest() {
		t.Fatalf("digest %x (%v), want %s", d, err, m.digest())
	}
}
