package walreplay

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriterRotatesAndResumes(t *testing.T) {
	es := genEntries(4, 300, 8)
	dir := t.TempDir()
	w, err := OpenWriter(dir, WriterOptions{MaxSegmentSize: 4096, SyncEveryAppend: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es[:200] {
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	// Crash in the middle of entry 201.
	if err := w.AbandonMidEntry(es[200], 40); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(es[200]); err == nil {
		t.Fatal("append after abandon must fail")
	}
	l, _ := OpenLog(dir)
	for _, s := range l.Segments()[:len(l.Segments())-1] {
		if s.Size > 4096 {
			t.Fatalf("segment %s is %d bytes, over the 4096 limit", s.Name, s.Size)
		}
	}
	sum, err := l.Verify(context.Background())
	if err != nil || !sum.TornTail || sum.LastSeq != 200 {
		t.Fatalf("verify after crash: %+v %v", sum, err)
	}
	// Reopen: the torn tail is cut and appending continues.
	w, err = OpenWriter(dir, WriterOptions{MaxSegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if w.LastSeq() != 200 || w.LastTimestamp() != es[199].TimestampNS {
		t.Fatalf("resumed at %d/%d", w.LastSeq(), w.LastTimestamp())
	}
	for _, e := range es[200:] {
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l, _ = OpenLog(dir)
	sum, err = l.Verify(context.Background())
	if err != nil || sum.TornTail || sum.Entries != 300 || sum.LastSeq != 300 {
		t.Fatalf("verify after resume: %+v %v", sum, err)
	}
	m := modelOf(t, es)
	s := NewState()
	if _, err := l.Replay(context.Background(), Target{}, s); err != nil || hexDigest(s.Digest()) != m.digest() {
		t.Fatalf("replay after resume: %v", err)
	}
}

func TestWriterResumesEmptyNewestSegment(t *testing.T) {
	es := genEntries(5, 10, 2)
	dir := t.TempDir()
	writeLog(t, dir, 1<<20, es)
	// A crash right after rotation leaves an empty newest segment.
	if err := os.WriteFile(filepath.Join(dir, SegmentName(11)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWriter(dir, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w.LastSeq() != 10 || w.LastTimestamp() != es[9].TimestampNS {
		t.Fatalf("resumed at %d/%d", w.LastSeq(), w.LastTimestamp())
	}
	if err := w.Append(marker(11, es[9].TimestampNS-1)); err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("backwards timestamp accepted: %v", err)
	}
	if err := w.Append(marker(11, es[9].TimestampNS)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	l, _ := OpenLog(dir)
	if sum, err := l.Verify(context.Background()); err != nil || sum.LastSeq != 11 || len(l.Segments()) != 2 {
		t.Fatalf("%+v %v", sum, err)
	}
}

func TestWriterRefusesBadEntries(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(dir, WriterOptions{BufferSize: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Append(store(1, 10, rec("a", 1, "x"))); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*Entry{
		"gap":          store(3, 10, rec("b", 1, "x")),
		"repeat":       store(1, 10, rec("b", 1, "x")),
		"time back":    store(2, 9, rec("b", 1, "x")),
		"bad type":     {Seq: 2, TimestampNS: 10, Type: 9},
		"bad flags":    {Seq: 2, TimestampNS: 10, Type: Marker, Flags: 4},
		"bad payload":  {Seq: 2, TimestampNS: 10, Type: EpisodeStore, Payload: []byte{1}},
		"empty id":     store(2, 10, rec("", 1, "x")),
		"compact type": {Seq: 2, TimestampNS: 10, Type: MemoryDelete, Flags: FlagCompacted, Payload: AppendDelete(nil, "a")},
	} {
		if err := w.Append(e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if w.LastSeq() != 1 {
		t.Fatalf("last seq %d", w.LastSeq())
	}
}

func TestWriterRefusesCorruptNewestSegment(t *testing.T) {
	s1, s2 := corruptBase()
	b := encode(s2...)
	b[HeaderSize+1] ^= 1 // crc mismatch in the first entry, not the last
	dir := writeSegments(t, map[string][]byte{SegmentName(1): encode(s1...), SegmentName(4): b})
	if _, err := OpenWriter(dir, WriterOptions{}); err == nil {
		t.Fatal("writer opened on a corrupt segment")
	}
}

func TestParseSegmentName(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  uint64
		ok   bool
	}{
		{"wal-0000000000000001.log", 1, true},
		{"wal-ffffffffffffffff.log", 1<<64 - 1, true},
		{"wal-00000000000000ab.log", 0xab, true},
		{"wal-00000000000000AB.log", 0, false},
		{"wal-000000000000001.log", 0, false},
		{"wal-0000000000000001.log.compacting", 0, false},
		{"wal-000000000000000g.log", 0, false},
		{"xal-0000000000000001.log", 0, false},
	} {
		seq, err := ParseSegmentName(tc.name)
		if (err == nil) != tc.ok || seq != tc.seq {
			t.Errorf("%s: %d %v", tc.name, seq, err)
		}
		if tc.ok && SegmentName(seq) != tc.name {
			t.Errorf("SegmentName(%d) = %s", seq, SegmentName(seq))
		}
	}
}
