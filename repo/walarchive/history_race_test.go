package walarchive

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/engram"
	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// historyFiles counts the history record files of the space (duplicates
// included: LoadHistories keeps one per timeline).
func historyFiles(t *testing.T, r *repo.Repository, space string) int {
	t.Helper()
	n := 0
	dir := HistoryDir(r, space)
	if err := r.Backend().List(context.Background(), dir, func(name string, _ int64) error {
		if !strings.Contains(strings.TrimPrefix(name, dir+"/"), "/") {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPendingForkRecordedOnce: one pending fork recorded by two archivers
// whose flock does not exclude each other (the same data dir seen from two
// hosts: here two copies of it) becomes one timeline, whichever order they
// run in, one after the other or at once; a later restore to the same point
// is a fork of its own (timeline 3).
func TestPendingForkRecordedOnce(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		name := "one after the other"
		if concurrent {
			name = "at once"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			tr := repotest.New(t, repo.InitOptions{})
			r := tr.Repository
			fx := repotest.NewWALFixture(t, 1<<20)
			id, _, err := engram.EnsureIdentity(fx.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			fx.Write(t, 3<<20)
			ar := NewWALArchiver(r, nil)
			defer ar.Close()
			if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil {
				t.Fatal(err)
			}
			// A restore to seq 10: the newest segment is gone, the fork pending.
			segs, err := walreplay.ListSegments(fx.WALDir())
			if err != nil || len(segs) < 2 {
				t.Fatalf("segments %v, %v", segs, err)
			}
			if err := os.Remove(segs[len(segs)-1].Path); err != nil {
				t.Fatal(err)
			}
			pending := func(dir string, at time.Time) {
				tl := &engram.Timelines{}
				tl.SetFork(fx.Space, 1, &engram.PendingFork{Seq: 10, TS: 5, Target: "to-seq 10", Time: at.UTC().Format(time.RFC3339Nano)})
				if err := engram.WriteTimelines(dir, tl); err != nil {
					t.Fatal(err)
				}
			}
			pending(fx.DataDir, time.Now())
			other := filepath.Join(t.TempDir(), "other-host")
			if out, err := exec.Command("cp", "-a", fx.DataDir, other).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
			dirs := []string{fx.DataDir, other}
			got := make([]Line, 2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, d := range dirs {
				run := func() { got[i], errs[i] = DataDirTimeline(ctx, r, d, fx.Space, "host"+string(rune('a'+i))) }
				if concurrent {
					wg.Go(run)
				} else {
					run()
				}
			}
			wg.Wait()
			for i := range dirs {
				if errs[i] != nil || got[i].Timeline != 2 {
					t.Fatalf("archiver %d: %+v, %v", i, got[i], errs[i])
				}
				if tl, _ := engram.ReadTimelines(dirs[i]); tl.Of(fx.Space) != 2 || tl.Fork(fx.Space) != nil {
					t.Fatalf("archiver %d: timelines.json %+v", i, tl)
				}
			}
			h, err := LoadHistory(ctx, r, id.Identity, fx.Space)
			if err != nil || h.Newest() != 2 || h.Records[2].ForkSeq != 10 {
				t.Fatalf("history %+v, %v", h, err)
			}
			if n := historyFiles(t, r, fx.Space); !concurrent && n != 2 {
				t.Fatalf("%d history records, want 2 (timeline 1 and one of timeline 2)", n)
			}
			// A later restore to the same point is another fork.
			pending(fx.DataDir, time.Now().Add(time.Second))
			if l, err := DataDirTimeline(ctx, r, fx.DataDir, fx.Space, "hosta"); err != nil || l.Timeline != 3 {
				t.Fatalf("a second restore to the same point: %+v, %v", l, err)
			}
		})
	}
}
