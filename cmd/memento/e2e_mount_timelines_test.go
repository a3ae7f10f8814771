package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"memento/fusefs"
	"memento/walreplay"
)

// TestMountTimelines: a repository with two timelines of a space (a
// restore in place to an earlier point, then new writes archived). Through
// a real mount, spaces/<s>/timelines/ lists 1/ and 2/ and a README with
// both timelines' ranges; the same instant T after the fork read under
// timelines/1/at/T and timelines/2/at/T gives each timeline's ground truth
// (engram-sim truth of that timeline's data dir), at/T reads the newest;
// an instant outside timeline 1's range is ENOENT with a log line naming
// the ranges.
func TestMountTimelines(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	const sp = "space-a"
	simRun := func(n int, seed string) {
		e.simTimelineRun(dd, n, seed)
	}
	simRun(800, "1")
	e.mustRun("backup", "--data-dir", dd, "--all")
	simRun(1200, "2")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	tl1 := filepath.Join(work, "timeline1")
	cpA(t, dd, tl1)
	end1 := e.simTruth(tl1, sp)
	lo := e.timelines(sp).Timelines[0].Ranges[0].FromSeq
	fork := (lo + end1.Sequence) / 2
	e.mustRun("restore", "--space", sp, "--to-seq", strconv.FormatUint(fork, 10), "--target", dd)
	simRun(1200, "3")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	end2 := e.simTruth(dd, sp)
	if rg := e.timelines(sp); len(rg.Timelines) != 2 || rg.Timelines[1].ForkSeq != fork {
		t.Fatalf("two timelines expected: %+v", rg)
	}
	// An instant after the fork on both timelines: the timestamp of an
	// entry between the fork and timeline 1's end (timeline 2's entries
	// are written later, so its state at that instant is at most the fork
	// plus what it wrote by then: whatever it is, its truth says).
	seqs, tss := walEntryList(t, tl1, sp)
	k := fork + (end1.Sequence-fork)/2
	at := tss[k-seqs[0]]
	truth1 := e.simTruth(tl1, sp, "--at", strconv.FormatInt(at, 10))
	// Timeline 2's instants: one of its own entries after the fork.
	seqs2, tss2 := walEntryList(t, dd, sp)
	k2 := fork + (end2.Sequence-fork)/2
	at2 := tss2[k2-seqs2[0]]
	truth2 := e.simTruth(dd, sp, "--at", strconv.FormatInt(at2, 10))
	// The same instant at on timeline 2: its entries after the fork were
	// written after timeline 1's end, so there it is the state at the fork.
	truth2at := e.simTruth(dd, sp, "--at", strconv.FormatInt(at, 10))
	if truth2at.Sequence != fork || truth1.Sequence <= fork {
		t.Fatalf("at %d: timeline 1 at seq %d, timeline 2 at seq %d (fork %d)", at, truth1.Sequence, truth2at.Sequence, fork)
	}
	if truth1.Digest == truth2.Digest || truth1.Digest == truth2at.Digest {
		t.Fatalf("the two timelines' states are the same: the test would prove nothing")
	}

	m := e.startMount(t)
	tdir := filepath.Join(m.mp, "spaces", sp, "timelines")
	es, err := os.ReadDir(tdir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if err != nil || strings.Join(names, ",") != "1,2,README" {
		t.Fatalf("timelines/ lists %v (%v), want 1, 2, README", names, err)
	}
	readme, err := os.ReadFile(filepath.Join(tdir, "README"))
	if err != nil {
		t.Fatal(err)
	}
	ranges := e.mustRun("pitr", "ranges", "--space", sp)
	for _, want := range []string{"timeline 1: 1/at/", "timeline 2 (from timeline 1 at seq " + strconv.FormatUint(fork, 10) + "): 2/at/"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("timelines/README lacks %q:\n%s\n(pitr ranges:\n%s)", want, readme, ranges)
		}
	}
	readme2, err := os.ReadFile(filepath.Join(tdir, "2", "at", "README"))
	if err != nil || !strings.Contains(string(readme2), "timeline 2") || !strings.Contains(string(readme2), "--timeline 2") {
		t.Errorf("timelines/2/at/README: %v\n%s", err, readme2)
	}

	state := func(view string) fusefs.PITState {
		t.Helper()
		var st fusefs.PITState
		b, err := os.ReadFile(filepath.Join(view, "state.json"))
		if err != nil || json.Unmarshal(b, &st) != nil {
			t.Fatalf("%s/state.json %q: %v\nstderr: %s", view, b, err, m.stderr)
		}
		return st
	}
	check := func(rel string, want truthRec) {
		t.Helper()
		view := filepath.Join(m.mp, "spaces", sp, rel)
		st := state(view)
		if st.Seq != want.Sequence || st.StateDigest != want.Digest {
			t.Errorf("%s: seq %d digest %s, want seq %d digest %s", rel, st.Seq, st.StateDigest, want.Sequence, want.Digest)
		}
		// The view is a data dir: engram-sim's own replay of it agrees.
		if got := e.simTruth(view, sp); got.Digest != want.Digest || got.Sequence != want.Sequence {
			t.Errorf("%s: engram-sim replays the view to %+v, want %+v", rel, got, want)
		}
	}
	name := walreplay.FormatTime(at)
	check("timelines/1/at/"+name, truth1)
	// The README of timelines/1/at/ lists timeline 1's range.
	if b, err := os.ReadFile(filepath.Join(tdir, "1", "at", "README")); err != nil || !strings.Contains(string(b), "seq "+strconv.FormatUint(lo, 10)+".."+strconv.FormatUint(end1.Sequence, 10)+" ") {
		t.Errorf("timelines/1/at/README does not list seq %d..%d: %v\n%s", lo, end1.Sequence, err, b)
	}
	name2 := strconv.FormatInt(at2, 10)
	check("timelines/2/at/"+name2, truth2)
	check("timelines/2/at/"+name, truth2at) // the same instant, on each timeline its truth
	check("at/"+name2, truth2)              // at/ reads the newest timeline

	// Timeline 2's instant is after timeline 1's end: not on timeline 1.
	_, err = os.Stat(filepath.Join(tdir, "1", "at", name2))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("timelines/1/at/%s: %v, want ENOENT", name2, err)
	}
	// The line is logged before the lookup answers; the pipe may lag.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(m.stderr.String(), "point in time cannot be recovered"); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the unrecoverable instant:\n%s", m.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log := m.stderr.String(); !strings.Contains(log, "timeline=1") || !strings.Contains(log, "recoverable ranges: seq "+strconv.FormatUint(lo, 10)+".."+strconv.FormatUint(end1.Sequence, 10)) ||
		!strings.Contains(log, "choose it with --timeline 2") {
		t.Errorf("the log line does not name timeline 1 and its ranges:\n%s", log)
	}
	// A timeline that does not exist.
	if _, err := os.Stat(filepath.Join(tdir, "3")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("timelines/3: %v, want ENOENT", err)
	}
}
