package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"memento/engram"
)

// waitShipped waits until wal watch's --ship-log says the archive holds
// space's entries through seq on timeline tl (generous deadline: the
// machine is loaded), failing with the watch's output.
func waitShipped(t *testing.T, shipLog, space string, tl uint32, seq uint64, watchOut *lockedBuffer) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; {
		if f, err := os.Open(shipLog); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var l shipLine
				if json.Unmarshal(sc.Bytes(), &l) == nil && l.Space == space && l.Timeline == tl && l.LastSeq >= seq {
					f.Close()
					return
				}
			}
			f.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("wal watch never shipped %s through seq %d on timeline %d\n%s", space, seq, tl, watchOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWALWatchAcrossRestore: `wal watch` keeps running while the operator
// stops the database's writes and restores the space in place to an
// earlier instant. The watch never ships the restored files onto the old
// timeline: its next run records the pending fork (timeline 2), logs it,
// and archives what the database writes next on timeline 2. Timeline 1
// keeps its archive (through its end, not one entry more), and
// point-in-time restores after the fork on timeline 2, and after it on
// timeline 1, equal each timeline's ground truth.
func TestWALWatchAcrossRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	work := t.TempDir()
	dd, shipLog := filepath.Join(work, "dd"), filepath.Join(work, "ship.jsonl")
	const sp = "space-a"
	simRun := func(n int, seed string) {
		e.simTimelineRun(dd, n, seed)
	}
	simRun(1000, "1")
	e.mustRun("backup", "--data-dir", dd, "--all")
	watch, watchOut := e.start(mementoBin, "wal", "watch", "--data-dir", dd, "--all", "--interval", "200ms", "--ship-log", shipLog)
	stopped := false
	defer func() {
		if !stopped {
			_ = watch.Process.Kill()
			_ = watch.Wait()
		}
	}()
	simRun(1500, "2")
	end1 := e.simTruth(dd, sp)
	waitShipped(t, shipLog, sp, 1, end1.Sequence, watchOut)
	tl1 := filepath.Join(work, "timeline1")
	cpA(t, dd, tl1)

	// The writes stop; the space is restored in place under the running watch.
	rg := e.timelines(sp)
	lo := rg.Timelines[0].Ranges[0].FromSeq
	fork := (lo + end1.Sequence) / 2
	out := e.mustRun("restore", "--space", sp, "--to-seq", strconv.FormatUint(fork, 10), "--target", dd)
	if !strings.Contains(out, "records a new timeline forked at seq "+strconv.FormatUint(fork, 10)) {
		t.Fatalf("restore did not announce the new timeline:\n%s", out)
	}
	// The database writes again; the watch follows on timeline 2.
	simRun(1500, "3")
	end2 := e.simTruth(dd, sp)
	if end2.Sequence <= end1.Sequence {
		t.Fatalf("timeline 2 ends at %d, timeline 1 at %d: the test wants timeline 2 to reuse and pass timeline 1's sequences", end2.Sequence, end1.Sequence)
	}
	waitShipped(t, shipLog, sp, 2, end2.Sequence, watchOut)
	_ = watch.Process.Signal(syscall.SIGTERM)
	err := watch.Wait()
	stopped = true
	if err != nil {
		t.Fatalf("wal watch: %v\n%s", err, watchOut)
	}
	if !strings.Contains(watchOut.String(), "the space is on a new timeline") {
		t.Errorf("wal watch did not log the new timeline:\n%s", watchOut)
	}
	if n := strings.Count(watchOut.String(), "skipping a restore's safety copy"); n != 1 {
		t.Errorf("wal watch warned %d times about the restore's safety copy, want once:\n%s", n, watchOut)
	}
	if strings.Contains(watchOut.String(), "archive run failed") {
		t.Errorf("an archive run failed across the restore:\n%s", watchOut)
	}
	tl, err := engram.ReadTimelines(dd)
	if err != nil || tl.Of(sp) != 2 || tl.Fork(sp) != nil {
		t.Fatalf("timelines.json after the watch: %+v, %v", tl, err)
	}
	rg = e.timelines(sp)
	if len(rg.Timelines) != 2 || rg.Timeline != 2 || rg.Timelines[1].Parent != 1 || rg.Timelines[1].ForkSeq != fork ||
		rg.Timelines[0].ArchivedThrough != end1.Sequence || rg.Timelines[1].ArchivedThrough != end2.Sequence {
		t.Fatalf("after the watch across the restore (fork %d, ends %d and %d): %+v", fork, end1.Sequence, end2.Sequence, rg)
	}
	// Points after the fork, on each timeline, equal its truth.
	n2 := e.checkTimeline(sp, nil, dd, fork+1, end2.Sequence, 4)
	n1 := e.checkTimeline(sp, []string{"--timeline", "1"}, tl1, fork+1, end1.Sequence, 2)
	if n2 < 4 || n1 < 2 {
		t.Fatalf("only %d restores on timeline 2 and %d on timeline 1", n2, n1)
	}
	t.Logf("fork at %d; %d restores on timeline 2 and %d on timeline 1 matched their truth", fork, n2, n1)
}

// TestTwoArchivesRecordOneFork: after a restore in place and new writes,
// two `wal archive` processes started at once both succeed and record one
// new timeline between them (timeline 2, not 2 and 3); a restore after the
// fork equals the truth.
func TestTwoArchivesRecordOneFork(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	const sp = "space-a"
	simRun := func(n int, seed string) {
		e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", strconv.Itoa(n), "--segment-size", "48KiB",
			"--dim", "8", "--seed", seed)
	}
	simRun(600, "1")
	e.mustRun("backup", "--data-dir", dd, "--all")
	simRun(900, "2")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	fork := uint64(1000)
	e.mustRun("restore", "--space", sp, "--to-seq", strconv.FormatUint(fork, 10), "--target", dd)
	simRun(900, "3")
	end2 := e.simTruth(dd, sp)
	a, aOut := e.start(mementoBin, "wal", "archive", "--data-dir", dd, "--all")
	b, bOut := e.start(mementoBin, "wal", "archive", "--data-dir", dd, "--all")
	if err := a.Wait(); err != nil {
		t.Fatalf("first wal archive: %v\n%s", err, aOut)
	}
	if err := b.Wait(); err != nil {
		t.Fatalf("second wal archive: %v\n%s", err, bOut)
	}
	rg := e.timelines(sp)
	if len(rg.Timelines) != 2 || rg.Timeline != 2 || rg.Timelines[1].ForkSeq != fork || rg.Timelines[1].ArchivedThrough != end2.Sequence {
		t.Fatalf("two archives of one fork: %+v\n%s\n%s", rg, aOut, bOut)
	}
	if tl, err := engram.ReadTimelines(dd); err != nil || tl.Of(sp) != 2 {
		t.Fatalf("timelines.json: %+v, %v", tl, err)
	}
	want := e.simTruth(dd, sp, "--to-seq", strconv.FormatUint(fork+400, 10))
	e.pitrOn(sp, nil, "--to-seq", strconv.FormatUint(fork+400, 10), want)
}
