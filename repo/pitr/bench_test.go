package pitr_test

import (
	"context"
	"memento/repo"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/repo/walarchive"
	"memento/walreplay"
	"path/filepath"
	"testing"
)

// BenchmarkPITR1000Segments restores a space to its last entry from a
// snapshot taken at the start plus 1,000 archived 256 KiB segments (~80,000
// entries of 768-dim records): fetch, verify, lay down, replay, digest.
func BenchmarkPITR1000Segments(b *testing.B) {
	tr := repotest.New(b, repo.InitOptions{})
	fx := repotest.NewWALFixture(b, 256<<10)
	fx.Write(b, 100<<10)
	backuptest.Space(b, tr.Repository, fx.DataDir, fx.Space)
	fx.Write(b, 1000*(256<<10))
	ar := walarchive.NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	res, err := ar.ArchiveSpace(context.Background(), fx.DataDir, fx.Space)
	if err != nil {
		b.Fatal(err)
	}
	segs, _ := walreplay.ListSegments(fx.WALDir())
	b.Logf("%d segments, %d archived now, %d MB, archive run %.2fs", len(segs), res.Segments, res.NewBytes>>20, res.Seconds)
	to := fx.Seq()
	b.SetBytes(res.NewBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(b.TempDir(), "dd")
		out, err := restore.RestorePointInTime(context.Background(), tr.Repository, restore.PITROptions{Space: fx.Space, Target: walreplay.Target{ToSeq: &to}, DataDir: dst})
		if err != nil {
			b.Fatal(err)
		}
		if out.Seq != to || out.ArchivedSegments < 999 {
			b.Fatalf("restored to %d from %d archived segments", out.Seq, out.ArchivedSegments)
		}
		b.ReportMetric(float64(out.ArchivedSegments), "segments")
		b.ReportMetric(float64(out.Replayed)/out.ReplaySeconds, "replay-entries/s")
	}
}
