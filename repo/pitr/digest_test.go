package pitr_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/walreplay"
)

// A point-in-time restore to a snapshot's own WAL end computes the state
// digest of the kind the snapshot names (version 2 in a format-5
// repository) and checks it against the recorded one: a snapshot recording
// another digest fails with one line naming the snapshot, the kind and the
// sequence.
func TestPITRChecksRecordedDigest(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	fx := repotest.NewWALFixture(t, 64<<10)
	fx.Write(t, 40<<10)
	good := backuptest.Space(t, tr.Repository, fx.DataDir, fx.Space)
	e := good.Engram
	if e.StateDigestKind != walreplay.DigestKindLtHash || e.WALEnd.Seq != fx.Seq() {
		t.Fatalf("snapshot records kind %q at seq %d (WAL at %d)", e.StateDigestKind, e.WALEnd.Seq, fx.Seq())
	}
	end := e.WALEnd.Seq
	res, err := restore.RestorePointInTime(ctx, tr.Repository, restore.PITROptions{Space: fx.Space, Target: seqTarget(end), DataDir: filepath.Join(t.TempDir(), "dd")})
	if err != nil {
		t.Fatal(err)
	}
	if res.StateDigest != e.StateDigest || res.StateDigestKind != walreplay.DigestKindLtHash {
		t.Fatalf("restore reported %s (%q), the snapshot recorded %s", res.StateDigest, res.StateDigestKind, e.StateDigest)
	}

	// The same snapshot, signed, recording a wrong digest.
	info := *e
	info.StateDigest = strings.Repeat("ab", 32)
	forged, err := backup.Backup(ctx, tr.Repository, backup.BackupOptions{Space: fx.Space, DataDir: fx.DataDir, NoParent: true, Engram: &info})
	if err != nil {
		t.Fatal(err)
	}
	_, err = restore.RestorePointInTime(ctx, tr.Repository, restore.PITROptions{Space: fx.Space, Target: seqTarget(end), DataDir: filepath.Join(t.TempDir(), "dd")})
	want := fmt.Sprintf("snapshot %s space %s: state digest (lthash16) at seq %d is %s, the backup recorded %s", forged.ShortID(), fx.Space, end, e.StateDigest, info.StateDigest)
	if err == nil || err.Error() != want || !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("restore from a snapshot with a wrong digest: %v\nwant: %s", err, want)
	}
}
