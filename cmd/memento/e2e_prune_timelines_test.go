package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
)

// TestPruneLeanTimelines: timeline 1's only snapshot is forgotten, timeline
// 2 (forked from it by a restore in place) has its own. prune drops
// timeline 1's archive but its newest record (nothing on timeline 1 can be
// recovered any more) and timeline 2's records below its snapshot's WAL
// end, frees bytes, and every point `pitr ranges` still lists on timeline 2
// restores to the truth.
func TestPruneLeanTimelines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	const sp = "space-a"
	simRun := func(n int, seed string) {
		e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "20000", "--entries", strconv.Itoa(n), "--segment-size", "48KiB",
			"--dim", "8", "--same-ts", "0.3", "--checkpoint-every", "100ms", "--seed", seed)
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
		} `json:"wal"`
	}
	out := e.mustRun("prune", "--json")
	if err := json.Unmarshal([]byte(out), &po); err != nil {
		t.Fatalf("prune --json: %v\n%s", err, out)
	}
	var tl1Kept, tl1Dropped, tl2Dropped int
	for _, w := range po.WAL {
		switch {
		case w.Space == sp && w.Timeline == 1:
			tl1Kept, tl1Dropped = w.Kept, w.Dropped
		case w.Space == sp && w.Timeline == 2:
			tl2Dropped = w.Dropped
		}
	}
	if po.BytesFreed <= 0 || tl1Dropped < 10 || tl1Kept != 1 || tl2Dropped < 1 {
		t.Fatalf("prune: freed %d bytes, timeline 1 kept %d dropped %d, timeline 2 dropped %d: %s", po.BytesFreed, tl1Kept, tl1Dropped, tl2Dropped, out)
	}
	t.Logf("prune freed %d bytes; timeline 1: %d segments dropped, %d kept; timeline 2: %d dropped", po.BytesFreed, tl1Dropped, tl1Kept, tl2Dropped)

	rg := e.timelines(sp)
	if len(rg.Timelines) != 2 || len(rg.Timelines[0].Ranges) != 0 || len(rg.Timelines[1].Ranges) != 1 ||
		rg.Timelines[1].Ranges[0].ToSeq != end2.Sequence || rg.Timelines[1].Ranges[0].FromSeq <= fork {
		t.Fatalf("ranges after the prune: %+v", rg)
	}
	lo := rg.Timelines[1].Ranges[0].FromSeq
	n := e.checkTimeline(sp, nil, dd, lo, end2.Sequence, 12)
	t.Logf("%d restores on timeline 2 after the prune matched the truth", n)
	// A second prune has nothing left to do.
	var again struct {
		BytesFreed int64 `json:"bytes_freed"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("prune", "--json")), &again); err != nil || again.BytesFreed != 0 {
		t.Fatalf("second prune: %+v, %v", again, err)
	}
}
