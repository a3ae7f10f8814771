package pitr_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// TestPITRFromTinyArchiveRuns restores a space whose WAL reached the archive
// in many tiny runs (a few KiB each, as `wal watch` ships a busy database:
// records whose tails are pieces, joined at the 1 MiB boundary and when a
// segment is sealed) and requires the restored segments to be the source's
// bytes: the whole WAL at its end, and a prefix at a target inside a tail.
func TestPITRFromTinyArchiveRuns(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	fx := repotest.NewWALFixture(t, 1280<<10) // 1.25 MiB segments: one boundary, then sealed
	fx.Write(t, 4<<10)
	backuptest.Space(t, tr.Repository, fx.DataDir, fx.Space) // the base: everything after it comes from the archive
	ar := walarchive.NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	pieces := 0
	var mid uint64 // a sequence inside a tail of pieces
	for runs := 0; ; runs++ {
		fx.Write(t, 24<<10)
		if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil {
			t.Fatalf("run %d: %v", runs, err)
		}
		segs, err := walreplay.ListSegments(fx.WALDir())
		if err != nil {
			t.Fatal(err)
		}
		pos, _ := ar.Position(ctx, fx.Space)
		if rec := pos.Record(segs[len(segs)-1].Name, false); rec != nil && rec.Pieces > 0 {
			pieces++
			if rec.Size > 1<<20 && mid == 0 {
				mid = rec.LastSeq - 1
			}
		}
		if len(segs) >= 2 {
			break
		}
	}
	if pieces < 25 || mid == 0 {
		t.Fatalf("%d runs left pieces (mid %d): the test did not archive through pieces", pieces, mid)
	}
	src := t.TempDir()
	copyWAL(t, fx.WALDir(), src)
	for _, seq := range []uint64{fx.Seq(), mid} {
		dd := filepath.Join(t.TempDir(), "dd")
		res, err := restore.RestorePointInTime(ctx, tr.Reopen(t), restore.PITROptions{Space: fx.Space, Target: seqTarget(seq), DataDir: dd})
		if err != nil {
			t.Fatalf("restore to seq %d: %v", seq, err)
		}
		if res.Seq != seq || res.ArchivedSegments == 0 {
			t.Fatalf("restore to seq %d: %+v", seq, res)
		}
		segs, err := walreplay.ListSegments(filepath.Join(dd, "spaces", fx.Space, "wal"))
		if err != nil || len(segs) == 0 {
			t.Fatalf("restored WAL: %v %v", segs, err)
		}
		for i, s := range segs {
			got, err := os.ReadFile(s.Path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(src, s.Name))
			if err != nil {
				t.Fatal(err)
			}
			if seq == fx.Seq() && len(got) != len(want) {
				t.Fatalf("restore to the end: segment %s has %d bytes, the source %d", s.Name, len(got), len(want))
			}
			if i < len(segs)-1 && len(got) != len(want) || len(got) > len(want) || !bytes.Equal(got, want[:len(got)]) {
				t.Fatalf("restore to seq %d: segment %s (%d bytes) is not the source's bytes (%d)", seq, s.Name, len(got), len(want))
			}
		}
	}
}
