package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
)

// TestPruneLeanTimelines: timeline 1's only snapshot is forgotten, timeline
// 2 (forked from it by a restore in place) has its own. Nothing on timeline
// 1 can be recovered any more: prune drops its archive after the fork (it
// used to keep a timeline without snapshots whole), frees bytes, and every
// point `pitr ranges` still lists on timeline 2 restores to the truth.
func TestPruneLeanTimelines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	const sp = "space-a"
	simRun := func(n int, seed string) {
		e.simTimelineRun(dd, n, seed)
	}
	simRun(600, "1")
	e.mustRun("backup", "--data-dir", dd, "--all")
	simRun(1500, "2")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	end1 := e.simTruth(dd, sp)
	fork := end1.Sequence - 500
	e.mustRun("restore", "--space", sp, "--to-seq", strconv.FormatUint(fork, 10), "--target", dd)
	simRun(900, "3")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	e.mustRun("backup", "--data-dir", dd, "--all")
	simRun(900, "4")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	end2 := e.simTruth(dd, sp)

	e.mustRun("forget", "--all", "--keep-last", "1")
	var po struct {
		BytesFreed int64 `json:"bytes_freed"`
		WAL        []struct {
			Space    string `json:"space"`
			Timeline uint32 `json:"timeline"`
			Kept     int    `json:"segments_kept"`
			Dropped  int    `json:"segments_dropped"`
			First    uint64 `json:"dropped_first_seq"`
			Last     uint64 `json:"dropped_last_seq"`
		} `json:"wal"`
	}
	out := e.mustRun("prune", "--json")
	if err := json.Unmarshal([]byte(out), &po); err != nil {
		t.Fatalf("prune --json: %v\n%s", err, out)
	}
	// Timeline 1 keeps its newest record (the archive position) and the
	// records whose chunks timeline 2's snapshot holds anyway (the WAL
	// before the fork, which the restored data dir has): it drops its
	// segments from the one holding the fork point to before its newest.
	found := false
	for _, w := range po.WAL {
		if w.Space == sp && w.Timeline == 1 {
			found = true
			if w.Dropped < 1 || w.First > fork || w.Last < fork || w.Last >= end1.Sequence {
				t.Fatalf("timeline 1: dropped %d segments, seq %d..%d; want the fork %d through before the end %d: %s", w.Dropped, w.First, w.Last, fork, end1.Sequence, out)
			}
			t.Logf("prune freed %d bytes; timeline 1: %d segments dropped (seq %d..%d), %d kept", po.BytesFreed, w.Dropped, w.First, w.Last, w.Kept)
		}
	}
	if !found || po.BytesFreed <= 0 {
		t.Fatalf("prune: %s", out)
	}

	rg := e.timelines(sp)
	if len(rg.Timelines) != 2 || len(rg.Timelines[0].Ranges) != 0 || len(rg.Timelines[1].Ranges) != 1 ||
		rg.Timelines[1].Ranges[0].ToSeq != end2.Sequence || rg.Timelines[1].Ranges[0].FromSeq <= fork {
		t.Fatalf("ranges after the prune: %+v", rg)
	}
	lo := rg.Timelines[1].Ranges[0].FromSeq
	n := e.checkTimeline(sp, nil, dd, lo, end2.Sequence, 4)
	t.Logf("%d restores on timeline 2 after the prune matched the truth", n)
	// A second prune has nothing left to do.
	var again struct {
		BytesFreed int64 `json:"bytes_freed"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("prune", "--json")), &again); err != nil || again.BytesFreed != 0 {
		t.Fatalf("second prune: %+v, %v", again, err)
	}
}
