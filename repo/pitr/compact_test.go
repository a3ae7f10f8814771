package pitr_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/backup/backuptest"
	"memento/repo/maintenance"
	"memento/repo/pitr"
	"memento/repo/repotest"
	"memento/repo/restore"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// compactWorld is a space whose WAL was archived, then compacted (its
// checkpoint inside the compacted run), then grown and archived again, with
// one snapshot taken after the compaction and none before it. truth is a
// copy of the WAL as written, entry by entry.
type compactWorld struct {
	tr         *repotest.Repo
	fx         *repotest.WALFixture
	truth      string
	cp         walreplay.Position // the checkpoint the snapshot records
	head       *walarchive.CompactResult
	marker     walreplay.Position // the compacted segment's closing marker
	end        uint64
	endTS      int64
	archiveRun func()
}

func newCompactWorld(t *testing.T, keepOriginals bool) *compactWorld {
	t.Helper()
	ctx := context.Background()
	w := &compactWorld{tr: repotest.New(t, repo.InitOptions{}), fx: repotest.NewWALFixture(t, 16<<10), truth: t.TempDir()}
	ar := walarchive.NewWALArchiver(w.tr.Repository, nil)
	t.Cleanup(func() { ar.Close() })
	w.archiveRun = func() {
		t.Helper()
		if _, err := ar.ArchiveSpace(ctx, w.fx.DataDir, w.fx.Space); err != nil {
			t.Fatal(err)
		}
	}
	walDir := w.fx.WALDir()
	w.fx.Write(t, 30*(16<<10))
	w.archiveRun()
	copyWAL(t, walDir, w.truth)
	var err error
	if w.head, err = walarchive.CompactWAL(ctx, w.tr.Repository, w.fx.DataDir, w.fx.Space, walarchive.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	if w.head.FirstSeq != 1 || w.head.LastSeq < 40 {
		t.Fatalf("compacted %+v, want a run from seq 1 over at least 40 entries", w.head)
	}
	// The database checkpointed inside the run: the snapshot's range
	// starts there, before the compacted segment's marker.
	w.cp = truthAt(t, w.truth, w.head.LastSeq/2)
	w.marker = truthAt(t, w.truth, w.head.LastSeq)
	cpJSON := fmt.Sprintf(`{"sequence":%d,"timestamp_ns":%d}`, w.cp.Seq, w.cp.TimestampNS)
	if err := os.WriteFile(filepath.Join(w.fx.DataDir, "spaces", w.fx.Space, "checkpoint.json"), []byte(cpJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	if !keepOriginals {
		// The kept originals have expired, and the archive lost them
		// (as prune drops them once no snapshot needs them).
		os.RemoveAll(w.head.KeptIn)
	}
	w.fx.Write(t, 5*(16<<10))
	copyWAL(t, walDir, w.truth) // the segments after the run
	w.archiveRun()
	w.end = w.fx.Seq()
	w.endTS = truthAt(t, w.truth, w.end).TimestampNS
	backuptest.Space(t, w.tr.Repository, w.fx.DataDir, w.fx.Space)
	return w
}

// copyWAL copies the ordinary segments of src into dst (compacted ones are
// skipped: dst keeps the originals they replaced).
func copyWAL(t *testing.T, src, dst string) {
	t.Helper()
	segs, err := walreplay.ListSegments(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		if e, err := walreplay.NewSegmentReader(strings.NewReader(string(b)), s.Name).Next(); err == nil && e.Compacted() {
			continue
		}
		if err := os.WriteFile(filepath.Join(dst, s.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// truthAt is the position of entry seq in the uncompacted WAL.
func truthAt(t *testing.T, dir string, seq uint64) walreplay.Position {
	t.Helper()
	pos, _ := truthState(t, dir, walreplay.Target{ToSeq: &seq}, "")
	if pos.Seq != seq {
		t.Fatalf("truth WAL stops at %d, short of %d", pos.Seq, seq)
	}
	return pos
}

// truthState replays the uncompacted WAL to t and returns where it stopped
// and the state digest of kind there.
func truthState(t *testing.T, dir string, tg walreplay.Target, kind string) (walreplay.Position, string) {
	t.Helper()
	l, err := walreplay.OpenLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := walreplay.NewState()
	pos, err := l.Replay(context.Background(), tg, st)
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.DigestOf(kind)
	if err != nil {
		t.Fatal(err)
	}
	return pos, hex.EncodeToString(d[:])
}

func seqTarget(n uint64) walreplay.Target  { return walreplay.Target{ToSeq: &n} }
func timeTarget(ts int64) walreplay.Target { return walreplay.Target{AtTime: &ts} }

// TestPITRRangesAfterCompaction checks that 'pitr ranges' is exactly what a
// restore accepts when the only snapshot was taken after 'wal compact' with
// its checkpoint inside the compacted run: with the original segments in the
// archive, every listed boundary (and a point inside the run) restores to
// the ground truth's state from them; without them, the range starts at the
// compacted segment's marker, which restores, and the entry before it is
// refused with ErrUnrecoverable naming the ranges.
func TestPITRRangesAfterCompaction(t *testing.T) {
	for _, tc := range []struct {
		name          string
		keepOriginals bool
	}{
		{"originals archived", true},
		{"originals pruned", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCompactWorld(t, tc.keepOriginals)
			ctx := context.Background()
			if !tc.keepOriginals {
				dropOriginals(t, w)
			}
			ranges, _, err := pitr.NewPlanner(restore.Fetcher(w.tr.Repository)).PITRRanges(ctx, w.tr.Repository, w.fx.Space)
			if err != nil {
				t.Fatal(err)
			}
			from := w.cp
			if !tc.keepOriginals {
				from = w.marker
			}
			want := []pitr.PITRRange{{FromSeq: from.Seq, FromTS: from.TimestampNS, ToSeq: w.end, ToTS: w.endTS, Snapshots: 1}}
			if fmt.Sprint(ranges) != fmt.Sprint(want) || ranges[0] != want[0] {
				t.Fatalf("ranges %+v, want %+v", ranges, want)
			}
			ok := []walreplay.Target{seqTarget(from.Seq), timeTarget(from.TimestampNS), seqTarget(w.end), timeTarget(w.endTS),
				seqTarget(w.head.LastSeq), timeTarget(w.marker.TimestampNS)}
			if tc.keepOriginals {
				ok = append(ok, seqTarget(w.head.LastSeq-1), seqTarget(w.cp.Seq+1))
			}
			for _, tg := range ok {
				res, err := restore.RestorePointInTime(ctx, w.tr.Repository, restore.PITROptions{Space: w.fx.Space, Target: tg, DataDir: filepath.Join(t.TempDir(), "dd")})
				if err != nil {
					t.Fatalf("restore to %s (listed as recoverable): %v", tg, err)
				}
				pos, digest := truthState(t, w.truth, tg, res.StateDigestKind)
				if res.StateDigestKind != walreplay.DigestKindLtHash {
					t.Fatalf("restore from a format-%d repository reported digest kind %q", repo.FormatVersion, res.StateDigestKind)
				}
				if res.Seq != pos.Seq || res.TimestampNS != pos.TimestampNS || res.StateDigest != digest {
					t.Fatalf("restore to %s: seq %d ts %d digest %s, the truth is seq %d ts %d digest %s",
						tg, res.Seq, res.TimestampNS, res.StateDigest, pos.Seq, pos.TimestampNS, digest)
				}
			}
			before := truthAt(t, w.truth, from.Seq-1)
			for _, tg := range []walreplay.Target{seqTarget(from.Seq - 1), timeTarget(from.TimestampNS - 1), seqTarget(w.end + 1), timeTarget(w.endTS + 1)} {
				if tg.AtTime != nil && *tg.AtTime < from.TimestampNS && before.TimestampNS == from.TimestampNS {
					t.Fatalf("entries %d and %d share a timestamp: pick another fixture seed", before.Seq, from.Seq)
				}
				_, err := restore.RestorePointInTime(ctx, w.tr.Repository, restore.PITROptions{Space: w.fx.Space, Target: tg, DataDir: filepath.Join(t.TempDir(), "dd")})
				wantMsg := "recoverable ranges: " + want[0].String()
				if !errors.Is(err, pitr.ErrUnrecoverable) || !strings.Contains(err.Error(), wantMsg) {
					t.Fatalf("restore to %s (not listed): %v, want ErrUnrecoverable with %q", tg, err, wantMsg)
				}
			}
		})
	}
}

// dropOriginals removes the archive's ordinary records of the compacted run,
// as prune does once no snapshot reaches them, and checks it happened.
func dropOriginals(t *testing.T, w *compactWorld) {
	t.Helper()
	ctx := context.Background()
	if _, err := maintenance.Prune(ctx, w.tr.Repository, maintenance.PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	arch, err := walarchive.LoadWALArchive(ctx, w.tr.Repository, w.fx.Space)
	if err != nil {
		t.Fatal(err)
	}
	if pitr.OriginalsForTest(arch, w.head.FirstSeq, w.head.LastSeq) != nil {
		t.Fatalf("prune kept the originals of the compacted run %d..%d", w.head.FirstSeq, w.head.LastSeq)
	}
}
