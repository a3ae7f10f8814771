package main

import (
	"path/filepath"
	"strconv"
	"testing"
)

// TestPITRRestoreAllSpaces recovers every space of a data dir to one seq
// with `restore --all --to-seq`: three spaces, recovered two at a time with
// their WAL replays taking turns (PITROptions.Replays, issue 18), each
// printed with the seq and state digest engram-sim's own replay gives, and
// each restored space's WAL replaying to exactly that.
func TestPITRRestoreAllSpaces(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("run", "--dir", dd, "--spaces", "3", "--rate", "0", "--entries", "1500", "--segment-size", "64KiB",
		"--dim", "16", "--mix", "store=50,update=30,delete=20", "--seed", "7")
	e.mustRun("backup", "--data-dir", dd, "--all")
	spaces := []string{"space-a", "space-b", "space-c"}
	var backedUp uint64 // the highest seq any space's snapshot holds
	for _, sp := range spaces {
		backedUp = max(backedUp, e.simTruth(dd, sp).Sequence)
	}
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "1500", "--mix", "store=50,update=30,delete=20", "--seed", "7")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	// A seq after every snapshot (replayed from the archive) and before every
	// space's end.
	seq := backedUp + 100
	for _, sp := range spaces {
		if end := e.simTruth(dd, sp).Sequence; end <= seq {
			t.Fatalf("space %s ends at seq %d, not after seq %d", sp, end, seq)
		}
	}
	want := map[string]truthRec{}
	for _, sp := range spaces {
		want[sp] = e.simTruth(dd, sp, "--to-seq", strconv.FormatUint(seq, 10))
	}
	dst := filepath.Join(t.TempDir(), "restored")
	out := e.mustRun("restore", "--all", "--to-seq", strconv.FormatUint(seq, 10), "--target", dst)
	got := map[string]bool{}
	for _, m := range recoveredRe.FindAllStringSubmatch(out, -1) {
		sp := m[1]
		w, ok := want[sp]
		if !ok || got[sp] {
			t.Fatalf("unexpected or repeated recovery line for %q in %q", sp, out)
		}
		got[sp] = true
		if m[2] != strconv.FormatUint(seq, 10) || m[4] != w.Digest {
			t.Fatalf("space %s: recovered to seq %s digest %s, want seq %d digest %s", sp, m[2], m[4], seq, w.Digest)
		}
		if r := e.simTruth(dst, sp); r != w {
			t.Fatalf("space %s: the restored WAL replays to %+v, want %+v", sp, r, w)
		}
	}
	if len(got) != len(spaces) {
		t.Fatalf("recovered %d spaces, want %d: %q", len(got), len(spaces), out)
	}
}
