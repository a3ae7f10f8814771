package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
)

// TestEarlyReplay: a first backup replays the WAL from the start while the
// tiers are read (startEarly) and records that replay's WAL end and digest
// when the WAL did not change before the archiver reached wal/; when it grew
// in between (appends while the tiers were read), the early result is
// dropped and the replay after the tiers resumes from the checkpoint the
// early one saved (or, without a checkpoint directory, replays from the
// start), so the snapshot's WAL end and digest are those of the grown WAL,
// its WALStart the end before the tiers. A backup that resumes from a
// checkpoint begins no early replay. Both digest versions.
func TestEarlyReplay(t *testing.T) {
	for _, format := range []int{4, repo.FormatVersion} {
		t.Run(fmt.Sprintf("format %d", format), func(t *testing.T) {
			tr := formatRepo(t, format)
			kind := tr.Config().StateDigestKind()
			for _, tc := range []struct {
				name        string
				grow        bool
				ckpt        bool
				wantResumed bool
			}{
				{"unchanged", false, true, false},
				{"unchanged, no checkpoint dir", false, false, false},
				{"grown", true, true, true},
				{"grown, no checkpoint dir", true, false, false},
			} {
				dd := filepath.Join(t.TempDir(), "engram")
				const space = "s1"
				repotest.WriteEngramSpace(t, dd, space, 400, 16<<10, 100)
				walDir := filepath.Join(dd, "spaces", space, "wal")
				ck := ""
				if tc.ckpt {
					ck = t.TempDir()
				}
				rec := NewEngramRecorder(context.Background(), dd, space)
				rec.CheckpointDir, rec.DigestKind = ck, kind
				rec.Replays = NewReplayLimiter(0)
				grown := false
				opts := BackupOptions{DataDir: dd, Space: space, NoParent: true}
				opts.BeforeDir = func(rel string) error {
					// The first directory after the space's start: the
					// early replay has begun on the WAL of 400 entries.
					if tc.grow && !grown && rel != "" && !strings.HasSuffix(rel, "/wal") {
						if rec.early == nil {
							t.Errorf("%s: no early replay begun before the tiers", tc.name)
						}
						grown = true
						appendDay(t, walDir, 400, 150)
					}
					return nil
				}
				rec.Attach(&opts)
				sn := mustBackup(t, tr.Repository, opts)
				rec.Close()
				wantEnd := uint64(400)
				if tc.grow {
					wantEnd = 550
				}
				e := sn.Engram
				if rec.early == nil || rec.adopted != !tc.grow || rec.Resumed != tc.wantResumed {
					t.Fatalf("%s: early %v adopted %v resumed %v", tc.name, rec.early != nil, rec.adopted, rec.Resumed)
				}
				if want := replayDigest(t, walDir, kind); e.StateDigest != want || e.StateDigestKind != kind || e.WALEnd.Seq != wantEnd || e.WALStart.Seq != 400 || e.WALFirst.Seq != 1 || len(e.Damage) != 0 {
					t.Fatalf("%s: recorded %+v; want digest %s at seq %d", tc.name, e, want, wantEnd)
				}
				if !tc.ckpt {
					continue
				}
				// The next backup after appends resumes from the checkpoint
				// and begins no early replay.
				appendDay(t, walDir, wantEnd, 50)
				rec = NewEngramRecorder(context.Background(), dd, space)
				rec.CheckpointDir, rec.DigestKind = ck, kind
				opts = BackupOptions{DataDir: dd, Space: space, NoParent: true}
				rec.Attach(&opts)
				sn = mustBackup(t, tr.Repository, opts)
				rec.Close()
				if rec.early != nil || !rec.Resumed || sn.Engram.WALEnd.Seq != wantEnd+50 || sn.Engram.StateDigest != replayDigest(t, walDir, kind) {
					t.Fatalf("%s, next backup: early %v resumed %v recorded %+v", tc.name, rec.early != nil, rec.Resumed, sn.Engram)
				}
			}
		})
	}
}
