package backup

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// recordedBackup backs up a space through an EngramRecorder that keeps its
// replay checkpoint in ckDir (empty: none) and returns the snapshot and
// whether the replay resumed from a checkpoint.
func recordedBackup(t *testing.T, r *repo.Repository, dataDir, space, ckDir string) (*repo.Snapshot, bool) {
	t.Helper()
	return limitedBackup(t, r, dataDir, space, ckDir, nil)
}

// limitedBackup is recordedBackup with the replay taking turns through l.
func limitedBackup(t *testing.T, r *repo.Repository, dataDir, space, ckDir string, l *ReplayLimiter) (*repo.Snapshot, bool) {
	t.Helper()
	rec := NewEngramRecorder(context.Background(), dataDir, space)
	defer rec.Close()
	rec.CheckpointDir = ckDir
	rec.Replays = l
	rec.DigestKind = r.Config().StateDigestKind()
	opts := BackupOptions{DataDir: dataDir, Space: space, NoParent: true}
	rec.Attach(&opts)
	return mustBackup(t, r, opts), rec.Resumed
}

// appendDay appends n updates and deletes to the space's WAL after seq from.
func appendDay(t *testing.T, walDir string, from uint64, n int) {
	t.Helper()
	w, err := walreplay.OpenWriter(walDir, walreplay.WriterOptions{MaxSegmentSize: 16 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		seq := from + uint64(i)
		e := &walreplay.Entry{Seq: seq, TimestampNS: repotest.EngramEpoch + int64(seq)*1000, Type: walreplay.MemoryUpdate}
		if i%7 == 0 {
			e.Type, e.Payload = walreplay.MemoryDelete, walreplay.AppendDelete(nil, fmt.Sprintf("mem-%05d", i))
		} else {
			e.Payload = walreplay.AppendRecord(nil, &walreplay.Record{ID: fmt.Sprintf("mem-%05d", i*3), Confidence: 0.5, Content: fmt.Sprintf("day %d", i)})
		}
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// replayDigest is the state digest of kind of a replay of the whole WAL.
func replayDigest(t *testing.T, walDir, kind string) string {
	t.Helper()
	l, err := walreplay.OpenLog(walDir)
	if err != nil {
		t.Fatal(err)
	}
	s := walreplay.NewState()
	if _, err := l.Replay(context.Background(), walreplay.Target{}, s); err != nil {
		t.Fatal(err)
	}
	d, err := s.DigestOf(kind)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(d[:])
}

// TestBackupResumesReplayAfterAppends: after a day of appends the backup
// resumes the state replay from the previous backup's checkpoint and
// records the digest and WAL end a replay from the start gives; a damaged
// checkpoint, or a WAL compacted under it, replays from the start with the
// same result. In a format-4 repository with the version-1 digest (read
// again in id order after each replay), in a format-5 one with version 2
// (carried in the checkpoint).
func TestBackupResumesReplayAfterAppends(t *testing.T) {
	for _, format := range []int{4, repo.FormatVersion} {
		t.Run(fmt.Sprintf("format %d", format), func(t *testing.T) { testBackupResumes(t, format) })
	}
}

func testBackupResumes(t *testing.T, format int) {
	tr := formatRepo(t, format)
	if want := map[bool]string{false: "", true: walreplay.DigestKindLtHash}[format >= 5]; tr.Config().StateDigestKind() != want {
		t.Fatalf("format %d: digest kind %q", format, tr.Config().StateDigestKind())
	}
	dd := filepath.Join(t.TempDir(), "engram")
	ck := t.TempDir()
	const space = "s1"
	repotest.WriteEngramSpace(t, dd, space, 400, 16<<10, 100)
	walDir := filepath.Join(dd, "spaces", space, "wal")

	first, resumed := recordedBackup(t, tr.Repository, dd, space, ck)
	if resumed || first.Engram.StateDigest != replayDigest(t, walDir, tr.Config().StateDigestKind()) {
		t.Fatalf("first backup: resumed %v, digest %s", resumed, first.Engram.StateDigest)
	}
	files, _ := filepath.Glob(filepath.Join(ck, "replay", "*.ckpt"))
	if len(files) != 1 {
		t.Fatalf("checkpoints %v, want one", files)
	}

	seq := uint64(400)
	check := func(name string, wantResumed bool) {
		t.Helper()
		appendDay(t, walDir, seq, 150)
		seq += 150
		sn, resumed := recordedBackup(t, tr.Repository, dd, space, ck)
		if e := sn.Engram; resumed != wantResumed || e.StateDigest != replayDigest(t, walDir, tr.Config().StateDigestKind()) || e.WALEnd.Seq != seq || e.WALStart.Seq != seq || len(e.Damage) != 0 {
			t.Fatalf("%s: resumed %v (want %v), recorded %+v; want digest %s at seq %d", name, resumed, wantResumed, e, replayDigest(t, walDir, tr.Config().StateDigestKind()), seq)
		}
	}
	check("after a day", true)
	check("after another day", true)

	if err := os.WriteFile(files[0], []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("damaged checkpoint", false)
	check("after the day after", true)

	// A sealed segment replaced (what compaction does): from the start.
	segs, err := walreplay.ListSegments(walDir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(segs[1].Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segs[1].Path+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(segs[1].Path+".tmp", segs[1].Path); err != nil {
		t.Fatal(err)
	}
	check("segment replaced", false)
}

// TestBackupSpaceKeepsReplayCheckpointInCache: BackupSpace keeps the
// checkpoint in the repository's cache directory, private to its user.
func TestBackupSpaceKeepsReplayCheckpointInCache(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	const space = "s1"
	repotest.WriteEngramSpace(t, dd, space, 300, 16<<10, 100)
	if _, err := BackupSpace(context.Background(), tr.Repository, BackupOptions{DataDir: dd, Space: space}, SpaceOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(tr.Repository.Index().Path()), "replay")
	files, _ := filepath.Glob(filepath.Join(dir, "*.ckpt"))
	if len(files) != 1 {
		t.Fatalf("checkpoints in %s: %v, want one", dir, files)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("checkpoint %v, %v: want mode 0600", fi, err)
	}
}

// TestResumedReplayDoesNotWaitForATurn: a resumed replay of a small space
// keeps nothing mapped and runs beside the others: it completes while
// another replay holds the only turn.
func TestResumedReplayDoesNotWaitForATurn(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "engram")
	ck := t.TempDir()
	const space = "s1"
	repotest.WriteEngramSpace(t, dd, space, 300, 16<<10, 100)
	walDir := filepath.Join(dd, "spaces", space, "wal")
	recordedBackup(t, tr.Repository, dd, space, ck)
	appendDay(t, walDir, 300, 50)
	l := NewReplayLimiter(1)
	if err := l.acquire(context.Background()); err != nil { // another space's replay
		t.Fatal(err)
	}
	defer l.release()
	sn, resumed := limitedBackup(t, tr.Repository, dd, space, ck, l)
	if !resumed || sn.Engram.WALEnd.Seq != 350 || sn.Engram.StateDigest != replayDigest(t, walDir, tr.Config().StateDigestKind()) {
		t.Fatalf("resumed %v, recorded %+v", resumed, sn.Engram)
	}
}

// TestBackupResumesWALWithoutItsStart: a WAL whose first segments were removed
// records no state digest, so there is nothing to carry in the checkpoint,
// and every backup after a day resumes the replay in either format (format 5
// once made its checkpoints wait for a version-2 accumulator no backup of
// such a WAL computes, and replayed the second backup from the start).
func TestBackupResumesWALWithoutItsStart(t *testing.T) {
	for _, format := range []int{4, repo.FormatVersion} {
		t.Run(fmt.Sprintf("format %d", format), func(t *testing.T) {
			tr := formatRepo(t, format)
			ck := t.TempDir()
			const space = "s1"
			dd, walDir, _ := engramWAL(t, true)
			first, resumed := recordedBackup(t, tr.Repository, dd, space, ck)
			if resumed || first.Engram.StateDigest != "" || first.Engram.WALEnd.Seq != 400 {
				t.Fatalf("first backup: resumed %v, recorded %+v", resumed, first.Engram)
			}
			seq := uint64(400)
			for day := 1; day <= 3; day++ {
				appendDay(t, walDir, seq, 150)
				seq += 150
				sn, resumed := recordedBackup(t, tr.Repository, dd, space, ck)
				if e := sn.Engram; !resumed || e.StateDigest != "" || e.StateDigestKind != "" || e.WALEnd.Seq != seq || len(e.Damage) != 0 {
					t.Fatalf("day %d: resumed %v, recorded %+v; want a resumed replay to seq %d and no digest", day, resumed, e, seq)
				}
			}
		})
	}
}
