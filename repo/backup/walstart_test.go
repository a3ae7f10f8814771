package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// readerWALEnd is the last complete entry of the WAL in walDir as the
// backup's WAL start was once read, before the tiers (the newest segment
// with an entry read whole with a segment reader): what WALStart must be.
func readerWALEnd(t *testing.T, walDir string) repo.WALPosition {
	t.Helper()
	segs, err := walreplay.ListSegments(walDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(segs) - 1; i >= 0; i-- {
		b, err := os.ReadFile(segs[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		sr := walreplay.NewSegmentReader(bytes.NewReader(b), segs[i].Name)
		var pos repo.WALPosition
		for {
			e, err := sr.Next()
			if err != nil {
				break
			}
			pos = repo.WALPosition{Seq: e.Seq, TimestampNS: e.TimestampNS}
		}
		if pos.Seq > 0 {
			return pos
		}
	}
	return repo.WALPosition{}
}

// bytesRead is the bytes this process has read (rchar of /proc/self/io:
// read and pread calls), ok false where there is no such file.
func bytesRead(t *testing.T) (n int64, ok bool) {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "rchar: "); found {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n, true
		}
	}
	return 0, false
}

// walStartBackup backs up space s1 of dd through an EngramRecorder (replay
// checkpoints in ckDir, parent as given), calling between after the
// recorder's BeforeDir("") and before the recorder replays the WAL. It
// returns the snapshot, whether the replay resumed from a checkpoint, the
// bytes the recorder's BeforeDir("") read (-1: not known here) and
// Backup's error.
func walStartBackup(t *testing.T, r *repo.Repository, dd, ckDir string, parent *repo.Snapshot, between func()) (*repo.Snapshot, bool, int64, error) {
	t.Helper()
	rec := NewEngramRecorder(context.Background(), dd, "s1")
	defer rec.Close()
	rec.DigestKind = r.Config().StateDigestKind()
	rec.CheckpointDir = ckDir
	opts := BackupOptions{DataDir: dd, Space: "s1", Parent: parent, NoParent: parent == nil}
	if parent != nil {
		rec.Parent = parent.Engram
	}
	rec.Attach(&opts)
	hook := opts.BeforeDir
	read := int64(-1)
	opts.BeforeDir = func(rel string) error {
		switch rel {
		case "":
			r0, ok := bytesRead(t)
			err := hook(rel)
			if r1, _ := bytesRead(t); ok {
				read = r1 - r0
			}
			return err
		case "spaces/s1/wal":
			if between != nil {
				between()
			}
		}
		return hook(rel)
	}
	sn, err := Backup(context.Background(), r, opts)
	return sn, rec.Resumed, read, err
}

// TestWALStartIsTheWALBeforeTheTiers: WALStart is the last complete entry
// the WAL held when the backup began (before the tiers were read), what
// reading the newest segment whole then gives, although the backup no
// longer reads it then (the replay of the WAL resolves it): on a fresh
// multi-segment WAL, with entries appended before the WAL is replayed
// (which must not count), behind an empty newest segment (just rotated),
// with a torn last entry (completed afterwards), with damage in the newest
// segment (the replay stops there; the held segment is read), and the day
// after (a resumed replay, with more appends in between). The recorder's
// BeforeDir("") reads the newest segment's last walTailWindow bytes and
// less than 1 KiB more, where it read the newest segment whole (and the
// replay checkpoint).
func TestWALStartIsTheWALBeforeTheTiers(t *testing.T) {
	tr := formatRepo(t, repo.FormatVersion)
	newestSize := func(t *testing.T, walDir string) int64 {
		segs, err := walreplay.ListSegments(walDir)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(segs) - 1; i >= 0; i-- {
			if segs[i].Size > 0 {
				return segs[i].Size
			}
		}
		return 0
	}
	check := func(t *testing.T, name string, sn *repo.Snapshot, err error, read int64, want repo.WALPosition, wantEnd uint64, damaged bool, walDir string) {
		t.Helper()
		if damaged != errors.Is(err, repo.ErrMarkedDamaged) || !damaged && err != nil || sn == nil {
			t.Fatalf("%s: backup: %v", name, err)
		}
		e := sn.Engram
		if e.WALStart != want || e.WALEnd.Seq != wantEnd || (len(e.Damage) > 0) != damaged {
			t.Fatalf("%s: WAL start %+v, end %+v, damage %q; want start %+v, end seq %d", name, e.WALStart, e.WALEnd, e.Damage, want, wantEnd)
		}
		if read >= walTailWindow+1024 {
			t.Fatalf("%s: the recorder's BeforeDir(\"\") read %d bytes (newest segment %d)", name, read, newestSize(t, walDir))
		}
	}
	newWAL := func(t *testing.T) (dd, walDir string, segs []walreplay.SegmentInfo) {
		dd, walDir, segs = engramWAL(t, false)
		if n := newestSize(t, walDir); n < 2048 {
			t.Fatalf("newest segment of %d bytes: too small to tell a read of it", n)
		}
		return dd, walDir, segs
	}

	t.Run("fresh", func(t *testing.T) {
		dd, walDir, _ := newWAL(t)
		want := readerWALEnd(t, walDir)
		sn, _, read, err := walStartBackup(t, tr.Repository, dd, "", nil, nil)
		check(t, "fresh", sn, err, read, want, 400, false, walDir)
	})
	t.Run("appends before the replay", func(t *testing.T) {
		dd, walDir, _ := newWAL(t)
		want := readerWALEnd(t, walDir)
		sn, _, read, err := walStartBackup(t, tr.Repository, dd, "", nil, func() { appendDay(t, walDir, 400, 150) })
		check(t, "appends before the replay", sn, err, read, want, 550, false, walDir)
	})
	t.Run("empty newest segment", func(t *testing.T) {
		dd, walDir, _ := newWAL(t)
		if err := os.WriteFile(filepath.Join(walDir, walreplay.SegmentName(401)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want := readerWALEnd(t, walDir)
		sn, _, read, err := walStartBackup(t, tr.Repository, dd, "", nil, func() { appendDay(t, walDir, 400, 30) })
		check(t, "empty newest segment", sn, err, read, want, 430, false, walDir)
	})
	t.Run("torn last entry", func(t *testing.T) {
		dd, walDir, segs := newWAL(t)
		last := segs[len(segs)-1]
		b, err := os.ReadFile(last.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(last.Path, last.Size-5); err != nil {
			t.Fatal(err)
		}
		want := readerWALEnd(t, walDir)
		if want.Seq != 399 {
			t.Fatalf("torn: the reader ends at %+v", want)
		}
		// The writer completes the entry and goes on.
		sn, _, read, err := walStartBackup(t, tr.Repository, dd, "", nil, func() {
			f, err := os.OpenFile(last.Path, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				_, err = f.Write(b[last.Size-5:])
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				t.Error(err)
			}
			appendDay(t, walDir, 400, 20)
		})
		check(t, "torn last entry", sn, err, read, want, 420, false, walDir)
	})
	t.Run("a newest segment larger than the tail kept", func(t *testing.T) {
		dd, walDir, _ := newWAL(t)
		w, err := walreplay.OpenWriter(walDir, walreplay.WriterOptions{MaxSegmentSize: 4 << 20, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(401); seq <= 700; seq++ {
			e := &walreplay.Entry{Seq: seq, TimestampNS: repotest.EngramEpoch + int64(seq)*1000, Type: walreplay.MemoryUpdate,
				Payload: walreplay.AppendRecord(nil, &walreplay.Record{ID: "mem-big", Confidence: 0.5, Content: strings.Repeat("x", 4000)})}
			if err := w.Append(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if n := newestSize(t, walDir); n < 16*walTailWindow {
			t.Fatalf("newest segment of %d bytes: too small to tell a read of it", n)
		}
		want := readerWALEnd(t, walDir)
		sn, _, read, err := walStartBackup(t, tr.Repository, dd, "", nil, func() { appendDay(t, walDir, 700, 20) })
		check(t, "large newest segment", sn, err, read, want, 720, false, walDir)
	})
	t.Run("torn last entry cut and rewritten", func(t *testing.T) {
		// The listing sees a torn last entry (the database crashed); during
		// the backup the database starts again, cuts the torn tail
		// (walreplay.OpenWriter) and appends in the same file, past the
		// listed size. The entries it appends are after the backup began:
		// WALStart is still the last entry the listing saw complete.
		dd, walDir, segs := newWAL(t)
		last := segs[len(segs)-1]
		if err := os.Truncate(last.Path, last.Size-5); err != nil {
			t.Fatal(err)
		}
		want := readerWALEnd(t, walDir)
		if want.Seq != 399 {
			t.Fatalf("torn: the reader ends at %+v", want)
		}
		sn, _, read, err := walStartBackup(t, tr.Repository, dd, "", nil, func() { appendDay(t, walDir, 399, 30) })
		check(t, "torn last entry cut and rewritten", sn, err, read, want, 429, false, walDir)
	})
	t.Run("damage in the newest segment", func(t *testing.T) {
		dd, walDir, segs := newWAL(t)
		last := segs[len(segs)-1]
		f, err := os.OpenFile(last.Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		var c [1]byte
		if _, err := f.ReadAt(c[:], last.Size/2); err != nil {
			t.Fatal(err)
		}
		c[0] ^= 0xff
		if _, err := f.WriteAt(c[:], last.Size/2); err != nil {
			t.Fatal(err)
		}
		f.Close()
		want := readerWALEnd(t, walDir)
		if want.Seq >= 400 || want.Seq < last.FirstSeq {
			t.Fatalf("damaged: the reader ends at %+v (segment from %d)", want, last.FirstSeq)
		}
		sn, _, read, err := walStartBackup(t, tr.Repository, dd, "", nil, nil)
		check(t, "damage in the newest segment", sn, err, read, want, want.Seq, true, walDir)
	})
	t.Run("half an entry in a new segment, the one before removed", func(t *testing.T) {
		// The listing catches the first entry of a new segment half
		// written, and the segment before it is gone before the replay
		// (compacted away): the mark cannot say, and the fallback reads the
		// segment before from the file held open since the listing, not by
		// its name (which failed the backup).
		dd, walDir, segs := newWAL(t)
		e := &walreplay.Entry{Seq: 401, TimestampNS: repotest.EngramEpoch + 401*1000, Type: walreplay.MemoryUpdate,
			Payload: walreplay.AppendRecord(nil, &walreplay.Record{ID: "mem-00401", Confidence: 0.5, Content: "half"})}
		b := walreplay.AppendEntry(nil, e)
		if err := os.WriteFile(filepath.Join(walDir, walreplay.SegmentName(401)), b[:10], 0o644); err != nil {
			t.Fatal(err)
		}
		want := readerWALEnd(t, walDir)
		if want.Seq != 400 {
			t.Fatalf("the reader ends at %+v", want)
		}
		prev := segs[len(segs)-1].Path
		sn, _, _, err := walStartBackup(t, tr.Repository, dd, "", nil, func() {
			if err := os.Remove(prev); err != nil {
				t.Error(err)
			}
		})
		if sn == nil || err != nil && !errors.Is(err, repo.ErrMarkedDamaged) {
			t.Fatalf("backup: %v", err)
		}
		if sn.Engram.WALStart != want {
			t.Fatalf("WAL start %+v, want %+v", sn.Engram.WALStart, want)
		}
	})
	t.Run("the day after", func(t *testing.T) {
		dd, walDir, _ := newWAL(t)
		ck := t.TempDir()
		first, _, _, err := walStartBackup(t, tr.Repository, dd, ck, nil, nil)
		check(t, "first", first, err, 0, readerWALEnd(t, walDir), 400, false, walDir)
		for day, n := range []int{150, 3} { // into new segments; into the newest only
			seq := first.Engram.WALEnd.Seq
			appendDay(t, walDir, seq, n)
			want := readerWALEnd(t, walDir)
			sn, resumed, read, err := walStartBackup(t, tr.Repository, dd, ck, first, func() { appendDay(t, walDir, seq+uint64(n), 40) })
			if !resumed {
				t.Fatalf("day %d: the replay did not resume from the checkpoint", day+1)
			}
			check(t, "the day after", sn, err, read, want, seq+uint64(n)+40, false, walDir)
			first = sn
		}
	})
}
