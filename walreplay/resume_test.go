package walreplay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// replayResume runs ReplayResume from cp on dir and returns the digest
// (DigestVerified), the position, the next checkpoint and whether it resumed.
// It replays with a Mark at the end of the newest non-empty segment, which
// must then give the replay's end.
func replayResume(t *testing.T, dir string, cp *Checkpoint) (string, Position, *Checkpoint, bool, error) {
	t.Helper()
	s := NewZeroCopyState()
	defer s.Close()
	l := mustOpenLog(t, dir)
	m := markEnd(t, l)
	pos, next, resumed, err := l.ReplayResumeMarked(context.Background(), cp, s, m)
	if err != nil {
		return "", pos, nil, resumed, err
	}
	if m != nil {
		if p, ok := m.Last(); !ok || p != pos {
			t.Fatalf("mark at the end of %s (%d bytes): %+v %v, want the replay's end %+v", m.seg.Name, m.seg.Size, p, ok, pos)
		}
	}
	d, err := s.DigestVerified()
	return hexDigest(d), pos, next, resumed, err
}

// fullDigest is the digest and position of a plain Replay of dir.
func fullDigest(t *testing.T, dir string) (string, Position) {
	t.Helper()
	s := NewState()
	pos, err := mustOpenLog(t, dir).Replay(context.Background(), Target{}, s)
	if err != nil {
		t.Fatal(err)
	}
	return hexDigest(s.Digest()), pos
}

// roundTrip encodes and decodes cp, as a cache file would.
func roundTrip(t *testing.T, cp *Checkpoint) *Checkpoint {
	t.Helper()
	if cp == nil {
		t.Fatal("no checkpoint")
	}
	b, err := cp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// A day of appends (to the newest segment and into new ones) resumes from
// the checkpoint and gives the digest and position a replay from the start
// gives, again and again.
func TestReplayResumeAfterAppends(t *testing.T) {
	es := genEntries(7, 6000, 8)
	dir := t.TempDir()
	writeLog(t, dir, 256<<10, es[:3000])
	d, pos, cp, resumed, err := replayResume(t, dir, nil)
	if err != nil || resumed {
		t.Fatalf("first replay: resumed %v err %v", resumed, err)
	}
	if want, wpos := fullDigest(t, dir); d != want || pos != wpos {
		t.Fatalf("first replay: digest %s pos %+v, want %s %+v", d, pos, want, wpos)
	}
	for _, n := range []int{3000, 3001, 3500, 6000} {
		writeLog(t, dir, 256<<10, es[cpEnd(cp):n])
		d, pos, next, resumed, err := replayResume(t, dir, roundTrip(t, cp))
		if err != nil || !resumed {
			t.Fatalf("after %d entries: resumed %v err %v", n, resumed, err)
		}
		if want, wpos := fullDigest(t, dir); d != want || pos != wpos {
			t.Fatalf("after %d entries: digest %s pos %+v, want %s %+v", n, d, pos, want, wpos)
		}
		if pos.Seq != uint64(n) {
			t.Fatalf("after %d entries: at seq %d", n, pos.Seq)
		}
		cp = next
	}
}

func cpEnd(cp *Checkpoint) int { return int(cp.lastSeq) }

// A checkpoint whose log changed in any way its checks see is not resumed
// from, and the replay from the start still gives the right digest; one
// whose record bytes changed unseen fails DigestVerified.
func TestReplayResumeRefusesChangedLog(t *testing.T) {
	es := genEntries(9, 3000, 8)
	setup := func(t *testing.T) (string, *Checkpoint, []SegmentInfo) {
		dir := t.TempDir()
		writeLog(t, dir, 128<<10, es[:2000])
		_, _, cp, _, err := replayResume(t, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeLog(t, dir, 128<<10, es[2000:])
		segs, err := ListSegments(dir)
		if err != nil || len(segs) < 4 {
			t.Fatalf("segments %d, %v", len(segs), err)
		}
		return dir, roundTrip(t, cp), segs
	}
	check := func(t *testing.T, dir string, cp *Checkpoint, wantResumed bool) {
		t.Helper()
		want, wpos := fullDigest(t, dir)
		d, pos, _, resumed, err := replayResume(t, dir, cp)
		if err != nil || resumed != wantResumed || d != want || pos != wpos {
			t.Fatalf("resumed %v (want %v), digest %s pos %+v err %v; want %s %+v", resumed, wantResumed, d, pos, err, want, wpos)
		}
	}
	t.Run("untouched", func(t *testing.T) {
		dir, cp, _ := setup(t)
		check(t, dir, cp, true)
	})
	t.Run("sealed segment touched", func(t *testing.T) {
		dir, cp, segs := setup(t)
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(segs[0].Path, later, later); err != nil {
			t.Fatal(err)
		}
		check(t, dir, cp, false)
	})
	t.Run("segment replaced", func(t *testing.T) {
		dir, cp, segs := setup(t)
		b, err := os.ReadFile(segs[1].Path)
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "copy")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, segs[1].Path); err != nil {
			t.Fatal(err)
		}
		check(t, dir, cp, false)
	})
	t.Run("last entry rewritten", func(t *testing.T) {
		dir, cp, segs := setup(t)
		k := len(cp.segs) - 1
		f, err := os.OpenFile(segs[k].Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Flip a payload byte of the last entry the checkpoint applied.
		if _, err := f.WriteAt([]byte{0xff}, cp.lastOff+HeaderSize+30); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := cp.Fits(mustOpenLog(t, dir)); err == nil {
			t.Fatal("a rewritten last entry still fits")
		}
	})
	t.Run("newest segment rewritten before its end", func(t *testing.T) {
		dir, cp, segs := setup(t)
		k := len(cp.segs) - 1
		f, err := os.OpenFile(segs[k].Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		// A content byte of its first entry: ids, the last entry and the
		// size all stay as they were; only the CRC of the covered bytes
		// tells.
		if _, err := f.WriteAt([]byte{0xff}, HeaderSize+60); err != nil {
			t.Fatal(err)
		}
		f.Close()
		s := NewZeroCopyState()
		defer s.Close()
		_, _, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), cp, s)
		if resumed || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("resumed %v, err %v; want a replay from the start finding the damage", resumed, err)
		}
	})
	t.Run("record moved unseen", func(t *testing.T) {
		dir, cp, _ := setup(t)
		// A record that is not where the checkpoint says (what an unseen
		// rewrite of a sealed segment would look like to the digest).
		// (Every record: the day's entries overwrite some of them.)
		moveRecordsBack(cp)
		s := NewZeroCopyState()
		defer s.Close()
		_, _, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), cp, s)
		if err != nil || !resumed {
			t.Fatalf("resumed %v err %v", resumed, err)
		}
		if _, err := s.DigestVerified(); !errors.Is(err, ErrCheckpointStale) {
			t.Fatalf("DigestVerified = %v, want ErrCheckpointStale", err)
		}
	})
}

// ParseCheckpoint refuses damaged bytes instead of misreading them.
func TestParseCheckpointRefusesDamage(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, genEntries(3, 500, 4))
	_, _, cp, _, err := replayResume(t, dir, nil)
	if err != nil || cp == nil {
		t.Fatal(err)
	}
	b, _ := cp.MarshalBinary()
	for _, i := range []int{0, 8, len(b) / 2, len(b) - 1} {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		if _, err := ParseCheckpoint(c); err == nil {
			t.Fatalf("byte %d flipped: parsed", i)
		}
	}
	if _, err := ParseCheckpoint(b[:len(b)-1]); err == nil {
		t.Fatal("truncated: parsed")
	}
}

// FuzzParseCheckpoint: any bytes parse or fail, never panic; what parses
// encodes back to the same bytes. Seeds: real checkpoints of version 2,
// with and without the version-2 digest's accumulator, and a version-1
// magic (refused).
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("MWALCKP\x01"))
	f.Add([]byte("MWALCKP\x02"))
	dir := f.TempDir()
	w, err := OpenWriter(dir, WriterOptions{MaxSegmentSize: 4 << 10})
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range genEntries(3, 40, 2) {
		if err := w.Append(e); err != nil {
			f.Fatal(err)
		}
	}
	w.Close()
	l, err := OpenLog(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, track := range []bool{false, true} {
		s := NewZeroCopyState()
		if track {
			_ = s.TrackLtHash()
		}
		_, cp, _, err := l.ReplayResume(context.Background(), nil, s)
		s.Close()
		if err != nil || cp == nil {
			f.Fatal("no checkpoint", err)
		}
		b, _ := cp.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		back, _ := c.MarshalBinary()
		if !bytes.Equal(back, b) {
			t.Fatalf("parsed checkpoint encodes to other bytes")
		}
	})
}

// A checkpoint of encoding version 1 (before the accumulator) is refused,
// so the replay starts from the start instead of misreading it.
func TestParseCheckpointRefusesVersion1(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, genEntries(3, 200, 4))
	_, _, cp, _, err := replayResume(t, dir, nil)
	if err != nil || cp == nil {
		t.Fatal(err)
	}
	b, _ := cp.MarshalBinary()
	if b[7] != 2 {
		t.Fatalf("encoding version %d, want 2", b[7])
	}
	body := append([]byte(nil), b[:len(b)-32]...)
	body[7] = 1
	sum := blake3.Sum256(body)
	if _, err := ParseCheckpoint(append(body, sum[:]...)); err == nil {
		t.Fatal("a version-1 checkpoint parsed")
	}
}

// TestCheckpointCodecCopies: the checkpoint's records go from the State's
// id map to an encoding of the exact size, and from the bytes of the
// cache file into the next State, without a decoded copy of every record
// in between: ParseCheckpoint allocates a segment's name and a few objects
// whatever the records (it allocated one id per record and a slice of them all), the
// encoding is allocated once at its size (it was an estimate, regrown by
// append for longer ids), and the resumed State has room for a day's new
// records (its slots were sized to the checkpoint's exactly: the first
// new record copied them all). The bytes re-encode identically.
func TestCheckpointCodecCopies(t *testing.T) {
	dir := t.TempDir()
	es := genEntries(11, 6000, 4)
	writeLog(t, dir, 64<<10, es[:5900])
	s, cp, _ := resumeLt(t, dir, nil)
	s.Close()
	enc, err := cp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != cap(enc) {
		t.Fatalf("encoding of %d bytes in a buffer of %d", len(enc), cap(enc))
	}
	if a := testing.AllocsPerRun(5, func() { enc, _ = cp.MarshalBinary() }); a != 0 {
		t.Fatalf("MarshalBinary of the replay's checkpoint: %.0f allocations, want none (encoded in place)", a)
	}
	if a := testing.AllocsPerRun(20, func() {
		if _, err := ParseCheckpoint(enc); err != nil {
			t.Fatal(err)
		}
	}); a > float64(len(cp.segs)+4) {
		t.Fatalf("ParseCheckpoint of %d records in %d segments: %.0f allocations, want at most one a segment and 4", cp.Records(), len(cp.segs), a)
	}
	back := roundTrip(t, cp)
	if again, _ := back.MarshalBinary(); !bytes.Equal(again, enc) {
		t.Fatal("a parsed checkpoint encodes to other bytes")
	}

	writeLog(t, dir, 64<<10, es[5900:]) // a day: ~60 new records
	s = NewZeroCopyState()
	defer s.Close()
	_, next, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), back, s)
	if err != nil || !resumed || next == nil {
		t.Fatalf("resumed %v, next %v, err %v", resumed, next != nil, err)
	}
	if s.slotGrowths != 0 {
		t.Fatalf("the resumed State's slots were grown %d times by a day of %d entries", s.slotGrowths, len(es)-5900)
	}
	if len(next.recs) != cap(next.recs) || next.Records() != s.Len() {
		t.Fatalf("next checkpoint: %d records in %d bytes (capacity %d), the State holds %d", next.Records(), len(next.recs), cap(next.recs), s.Len())
	}
	want, _ := fullDigest(t, dir)
	if got, err := s.DigestVerified(); err != nil || hexDigest(got) != want {
		t.Fatalf("resumed digest %x, %v; want %s", got, err, want)
	}
}

// FuzzResumeFromResummedCheckpoint: a checkpoint whose body is changed and
// whose sum is made again (what FuzzParseCheckpoint's inputs rarely get
// past: the sum) parses or fails, and a replay resumed from it on the log
// it was made of never panics: the records ParseCheckpoint checks only for
// their lengths are decoded in place (ckRecAt) by State.load, which must
// refuse those out of their segments. The unchanged body resumes to the
// digest of a replay from the start.
func FuzzResumeFromResummedCheckpoint(f *testing.F) {
	dir := f.TempDir()
	writeLog(f, dir, 4<<10, genEntries(5, 60, 2))
	l, err := OpenLog(dir)
	if err != nil {
		f.Fatal(err)
	}
	s := NewZeroCopyState()
	_, cp, _, err := l.ReplayResume(context.Background(), nil, s)
	want, derr := s.DigestVerified()
	s.Close()
	if err != nil || cp == nil || derr != nil {
		f.Fatal("no checkpoint", err, derr)
	}
	b, _ := cp.MarshalBinary()
	seed := append([]byte(nil), b[:len(b)-32]...)
	f.Add(seed)
	// The first record in a segment past the checkpoint's last: refused.
	bad := append([]byte(nil), seed...)
	rec := bad[cp.headerSize():]
	le.PutUint32(rec[2+int(le.Uint16(rec)):], uint32(len(cp.segs)))
	f.Add(bad)
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := blake3.Sum256(body)
		c, err := ParseCheckpoint(append(append([]byte(nil), body...), sum[:]...))
		if err != nil {
			return
		}
		s := NewZeroCopyState()
		defer s.Close()
		_, _, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), c, s)
		if bytes.Equal(body, bad) && (resumed || err != nil) {
			t.Fatalf("a record out of the checkpoint's segments: resumed %v, err %v", resumed, err)
		}
		if bytes.Equal(body, seed) {
			got, derr := s.DigestVerified()
			if err != nil || !resumed || derr != nil || got != want {
				t.Fatalf("the checkpoint as made: resumed %v, err %v, %v, digest %x want %x", resumed, err, derr, got, want)
			}
		}
	})
}
