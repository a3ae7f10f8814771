package backup

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"memento/repo"
)

// earlyBackup backs up space s1 of dd through an EngramRecorder keeping
// its replay checkpoint in ck; atWAL runs when the archiver reaches wal/,
// before the recorder's hook (after every tier was read), with the
// recorder.
func earlyBackup(t *testing.T, r *repo.Repository, dd, ck string, atWAL func(*EngramRecorder)) (*repo.Snapshot, bool, error) {
	t.Helper()
	rec := NewEngramRecorder(context.Background(), dd, "s1")
	defer rec.Close()
	rec.DigestKind = r.Config().StateDigestKind()
	rec.CheckpointDir = ck
	opts := BackupOptions{DataDir: dd, Space: "s1", NoParent: true}
	rec.Attach(&opts)
	hook := opts.BeforeDir
	opts.BeforeDir = func(rel string) error {
		if rel == "spaces/s1/wal" && atWAL != nil {
			atWAL(rec)
		}
		return hook(rel)
	}
	sn, err := Backup(context.Background(), r, opts)
	return sn, rec.Resumed, err
}

// replayDone waits (up to a minute) for the recorder's background replay
// and reports whether there was one.
func replayDone(t *testing.T, rec *EngramRecorder) bool {
	t.Helper()
	if rec.replayed == nil {
		return false
	}
	select {
	case <-rec.replayed:
		return true
	case <-time.After(time.Minute):
		t.Fatal("the early replay did not end")
		return false
	}
}

// TestReplayResumesBeforeTheTiers: a day's backup whose replay resumes
// from a checkpoint replays the WAL while the tiers are read (startEarly):
// when the archiver reaches wal/, that replay is over and holds the day's
// WAL end; the snapshot records what a replay from the start gives, and
// the checkpoint it leaves is resumed from the next day. Without a
// checkpoint (the first backup) the replay waits for wal/ as before.
func TestReplayResumesBeforeTheTiers(t *testing.T) {
	tr := formatRepo(t, repo.FormatVersion)
	kind := tr.Config().StateDigestKind()
	dd, walDir, _ := engramWAL(t, false)
	ck := t.TempDir()
	first, resumed, err := earlyBackup(t, tr.Repository, dd, ck, func(rec *EngramRecorder) {
		if rec.replayed != nil {
			t.Error("first backup: a replay began before wal/ without a checkpoint")
		}
	})
	if err != nil || resumed || first.Engram.WALEnd.Seq != 400 {
		t.Fatalf("first backup: %v, resumed %v, end %+v", err, resumed, first.Engram.WALEnd)
	}
	seq := uint64(400)
	for day, n := range []int{150, 3} { // into new segments; into the newest only
		appendDay(t, walDir, seq, n)
		seq += uint64(n)
		var atWAL repo.WALPosition
		sn, resumed, err := earlyBackup(t, tr.Repository, dd, ck, func(rec *EngramRecorder) {
			if !replayDone(t, rec) {
				t.Errorf("day %d: no replay had begun when the archiver reached wal/", day+1)
				return
			}
			atWAL = rec.Info.WALEnd
		})
		if err != nil {
			t.Fatalf("day %d: %v", day+1, err)
		}
		if e := sn.Engram; !resumed || atWAL.Seq != seq || e.WALEnd.Seq != seq || e.WALStart.Seq != seq || e.StateDigest != replayDigest(t, walDir, kind) || len(e.Damage) != 0 {
			t.Fatalf("day %d: resumed %v, WAL end at wal/ %+v, recorded %+v; want end %d, digest %s", day+1, resumed, atWAL, e, seq, replayDigest(t, walDir, kind))
		}
	}
}

// TestEarlyReplayGoesOnAfterAppends: entries appended while the tiers are
// read make the WAL at wal/ another one than the early replay's: its
// results are dropped and the WAL as it is then is replayed from the early
// replay's checkpoint (still resumed), recording the WAL end and digest a
// replay from the start gives; the checkpoint saved is of that end (the
// next backup, with the WAL unchanged, resumes and replays nothing new).
// Damage the early replay met is recorded once, not once per replay.
func TestEarlyReplayGoesOnAfterAppends(t *testing.T) {
	tr := formatRepo(t, repo.FormatVersion)
	kind := tr.Config().StateDigestKind()
	dd, walDir, segs := engramWAL(t, false)
	ck := t.TempDir()
	if _, _, err := earlyBackup(t, tr.Repository, dd, ck, nil); err != nil {
		t.Fatal(err)
	}
	appendDay(t, walDir, 400, 150)
	sn, resumed, err := earlyBackup(t, tr.Repository, dd, ck, func(*EngramRecorder) { appendDay(t, walDir, 550, 40) })
	if e := sn.Engram; err != nil || !resumed || e.WALEnd.Seq != 590 || e.WALStart.Seq != 550 || e.StateDigest != replayDigest(t, walDir, kind) || len(e.Damage) != 0 {
		t.Fatalf("appends during the backup: %v, resumed %v, recorded %+v; want end 590, start 550, digest %s", err, resumed, e, replayDigest(t, walDir, kind))
	}
	sn, resumed, err = earlyBackup(t, tr.Repository, dd, ck, nil)
	if e := sn.Engram; err != nil || !resumed || e.WALEnd.Seq != 590 || e.StateDigest != replayDigest(t, walDir, kind) {
		t.Fatalf("the day after: %v, resumed %v, recorded %+v", err, resumed, e)
	}

	// A flipped byte in a sealed segment: the early replay does not resume
	// (the segment changed), replays from the start and meets the damage;
	// the appends make it replay again, which meets it again.
	f, err := os.OpenFile(segs[1].Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c [1]byte
	if _, err := f.ReadAt(c[:], segs[1].Size/2); err != nil {
		t.Fatal(err)
	}
	c[0] ^= 0xff
	if _, err := f.WriteAt(c[:], segs[1].Size/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sn, _, err = earlyBackup(t, tr.Repository, dd, ck, func(*EngramRecorder) { appendDay(t, walDir, 590, 5) })
	if !errors.Is(err, repo.ErrMarkedDamaged) || sn == nil || len(sn.Engram.Damage) != 1 || sn.Engram.WALFingerprint != "" {
		t.Fatalf("damaged: %v, %+v", err, sn)
	}
}

// TestEarlyReplayDroppedWithoutWAL: an early replay the archiver never
// adopts (wal/ not listed: here Wait without it) records nothing.
func TestEarlyReplayDroppedWithoutWAL(t *testing.T) {
	tr := formatRepo(t, repo.FormatVersion)
	dd, walDir, _ := engramWAL(t, false)
	ck := t.TempDir()
	if _, _, err := earlyBackup(t, tr.Repository, dd, ck, nil); err != nil {
		t.Fatal(err)
	}
	appendDay(t, walDir, 400, 20)
	rec := NewEngramRecorder(context.Background(), dd, "s1")
	defer rec.Close()
	rec.DigestKind = tr.Config().StateDigestKind()
	rec.CheckpointDir = ck
	if err := rec.BeforeDir(""); err != nil {
		t.Fatal(err)
	}
	if !replayDone(t, rec) || rec.Info.WALEnd.Seq != 420 {
		t.Fatalf("no early replay to drop: end %+v", rec.Info.WALEnd)
	}
	if err := rec.Wait(); err != nil {
		t.Fatal(err)
	}
	if i := rec.Info; i.Segments != 0 || i.WALEnd != (repo.WALPosition{}) || i.StateDigest != "" || i.WALFingerprint != "" || rec.Resumed {
		t.Fatalf("recorded %+v, resumed %v", i, rec.Resumed)
	}
}
