package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"memento/engram"
	"memento/walreplay"
)

// timelinesJSON is `pitr ranges --json` with its timelines.
type timelinesJSON struct {
	Identity  string `json:"identity"`
	Timeline  uint32 `json:"timeline"`
	Timelines []struct {
		Timeline        uint32 `json:"timeline"`
		Parent          uint32 `json:"parent"`
		ForkSeq         uint64 `json:"fork_seq"`
		ArchivedThrough uint64 `json:"archived_through"`
		Ranges          []struct {
			FromSeq uint64 `json:"from_seq"`
			FromTS  int64  `json:"from_ts"`
			ToSeq   uint64 `json:"to_seq"`
			ToTS    int64  `json:"to_ts"`
		} `json:"ranges"`
	} `json:"timelines"`
}

func (e *env) timelines(space string, extra ...string) timelinesJSON {
	e.t.Helper()
	var r timelinesJSON
	out := e.mustRun(append([]string{"pitr", "ranges", "--space", space, "--json"}, extra...)...)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("pitr ranges --json: %v\n%s", err, out)
	}
	return r
}

// pitrOn restores space to a target read on one timeline (extra: --timeline
// N, --identity ID) into a fresh dir and checks the printed digest and the
// restored dir against want.
func (e *env) pitrOn(space string, extra []string, flag, value string, want truthRec) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "restored")
	args := append([]string{"restore", "--space", space, flag, value, "--target", dst}, extra...)
	out := e.mustRun(args...)
	m := recoveredRe.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("restore %v: no recovery line in %q", args, out)
	}
	if m[2] != strconv.FormatUint(want.Sequence, 10) || m[4] != want.Digest {
		e.t.Fatalf("restore %v: got seq %s digest %s, want seq %d digest %s", args, m[2], m[4], want.Sequence, want.Digest)
	}
	got := e.simTruth(dst, space)
	if got.Sequence != want.Sequence || got.Digest != want.Digest || got.TimestampNS != want.TimestampNS {
		e.t.Fatalf("restore %v: the restored data dir replays to %+v, want %+v", args, got, want)
	}
}

// simTimelineRun has engram-sim write n entries to one space of dir at
// 20,000 a second in 48 KiB segments, 8-dimensional, a third sharing a
// timestamp (the timelines tests' small histories).
func (e *env) simTimelineRun(dir string, n int, seed string) {
	e.t.Helper()
	e.sim("run", "--dir", dir, "--spaces", "1", "--rate", "20000", "--entries", strconv.Itoa(n), "--segment-size", "48KiB",
		"--dim", "8", "--same-ts", "0.3", "--checkpoint-every", "100ms", "--seed", seed)
}

// cpA copies a data dir (cp -a), to keep a timeline's ground truth.
func cpA(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", src, dst, err, out)
	}
}

// walEntries returns (seq, ts) of every entry of the space's WAL in dir.
func walEntryList(t *testing.T, dir, space string) (seqs []uint64, tss []int64) {
	t.Helper()
	l, err := walreplay.OpenLog(filepath.Join(dir, "spaces", space, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Segments() {
		f, err := os.Open(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		sr := walreplay.NewSegmentReader(f, s.Name)
		for {
			en, err := sr.Next()
			if err != nil {
				break
			}
			seqs, tss = append(seqs, en.Seq), append(tss, en.TimestampNS)
		}
		f.Close()
	}
	return seqs, tss
}

// checkTimeline restores at n instants spread over seqs lo..hi of the
// timeline whose ground truth is the data dir truthDir (its WAL holds the
// timeline's history), by sequence and by time (exact, -1 ns, +1 ns), plus
// the instants around the given extra timestamps. It returns how many
// restores matched.
func (e *env) checkTimeline(space string, extra []string, truthDir string, lo, hi uint64, n int, around ...int64) int {
	e.t.Helper()
	seqs, tss := walEntryList(e.t, truthDir, space)
	restores := 0
	var pick []int
	for i, s := range seqs {
		if s >= lo && s <= hi {
			pick = append(pick, i)
		}
	}
	if len(pick) == 0 {
		e.t.Fatalf("no entries in %d..%d of %s", lo, hi, truthDir)
	}
	step := max(1, len(pick)/n)
	var ats []int64
	for k := 0; k < len(pick) && restores < n; k += step {
		i := pick[k]
		want := e.simTruth(truthDir, space, "--to-seq", strconv.FormatUint(seqs[i], 10))
		e.pitrOn(space, extra, "--to-seq", strconv.FormatUint(seqs[i], 10), want)
		restores++
		ats = append(ats, tss[i])
	}
	ats = append(ats, around...)
	for j, ts := range ats {
		ds := []int64{0}
		if j%3 == 0 || j >= len(ats)-len(around) {
			ds = []int64{-1, 0, 1}
		}
		for _, d := range ds {
			at := ts + d
			want := e.simTruth(truthDir, space, "--at", strconv.FormatInt(at, 10))
			if want.Sequence < lo || want.Sequence > hi {
				continue
			}
			e.pitrOn(space, extra, "--at", walreplay.FormatTime(at), want)
			restores++
		}
	}
	return restores
}

// TestTimelinesPITRAndContinue is issue 14's main scenario: a point-in-time
// restore over the live data dir, Engram (engram-sim) goes on writing, `wal
// archive` succeeds (a new timeline), and restores at many instants on both
// timelines (around the fork by ±1 ns) equal the ground truth of their
// timeline; then a second restore to a point on timeline 1 makes a third
// timeline, and every branch stays restorable.
func TestTimelinesPITRAndContinue(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	const sp = "space-a"
	simRun := func(dir string, n int, seed string) {
		e.simTimelineRun(dir, n, seed)
	}
	simRun(dd, 1200, "1")
	e.mustRun("backup", "--data-dir", dd, "--all")
	simRun(dd, 1500, "2")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	id, err := engram.ReadIdentity(dd)
	if err != nil {
		t.Fatalf("backup/archive created no identity: %v", err)
	}
	tl1 := filepath.Join(work, "timeline1")
	cpA(t, dd, tl1)
	end1 := e.simTruth(tl1, sp)
	rg := e.timelines(sp)
	if rg.Identity != id.Identity || len(rg.Timelines) != 1 || rg.Timelines[0].ArchivedThrough != end1.Sequence {
		t.Fatalf("before the fork: %+v (end %d)", rg, end1.Sequence)
	}
	lo1 := rg.Timelines[0].Ranges[0].FromSeq

	// PITR over the live dir to a point between the backup and the end.
	seqs, tss := walEntryList(t, tl1, sp)
	fork := (lo1 + end1.Sequence) / 2
	forkTS := tss[fork-seqs[0]]
	out := e.mustRun("restore", "--space", sp, "--to-seq", strconv.FormatUint(fork, 10), "--target", dd)
	if !strings.Contains(out, "records a new timeline forked at seq "+strconv.FormatUint(fork, 10)) {
		t.Fatalf("restore did not announce the new timeline:\n%s", out)
	}
	// engram-sim's truth names the pending fork, then the recorded timeline.
	if got, want := e.sim("truth", "--dir", dd, "--space", sp), `,"timeline_pending":true,"fork_timeline":1,"fork_seq":`+strconv.FormatUint(fork, 10)+"}"; !strings.HasSuffix(got, want+"\n") {
		t.Fatalf("truth after the restore: %q, want suffix %q", got, want)
	}
	// Engram goes on writing on the restored dir; archiving follows.
	simRun(dd, 1500, "3")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	if got := e.sim("truth", "--dir", dd, "--space", sp); !strings.HasSuffix(got, `,"timeline":2}`+"\n") {
		t.Fatalf("truth after the archive: %q", got)
	}
	tl, err := engram.ReadTimelines(dd)
	if err != nil || tl.Of(sp) != 2 || tl.Fork(sp) != nil {
		t.Fatalf("timelines.json after the archive: %+v, %v", tl, err)
	}
	end2 := e.simTruth(dd, sp)
	rg = e.timelines(sp)
	if len(rg.Timelines) != 2 || rg.Timeline != 2 || rg.Timelines[1].Parent != 1 || rg.Timelines[1].ForkSeq != fork ||
		rg.Timelines[1].ArchivedThrough != end2.Sequence || rg.Timelines[0].ArchivedThrough != end1.Sequence {
		t.Fatalf("after the fork: %+v", rg)
	}
	// An archive run again ships nothing and fails nothing.
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")

	n := 0
	// Timeline 2 (the default): from the backup through its end, around the fork.
	n2 := e.checkTimeline(sp, nil, dd, lo1, end2.Sequence, 20, forkTS)
	// Timeline 1: its entries after the fork too.
	n1 := e.checkTimeline(sp, []string{"--timeline", "1"}, tl1, lo1, end1.Sequence, 20, forkTS)
	n += n1 + n2
	if n1 < 20 || n2 < 20 {
		t.Fatalf("only %d restores on timeline 1 and %d on timeline 2", n1, n2)
	}
	// Timeline 1's end is no point of timeline 2: refused, listing both.
	r := e.wantFail(exitUnrecoverable, "timeline 1", "restore", "--space", sp, "--to-seq", strconv.FormatUint(end2.Sequence+1, 10), "--target", filepath.Join(work, "never"))
	_ = r

	// A second restore to a point on timeline 1 (after the first fork):
	// timeline 3, parent 1.
	tl2 := filepath.Join(work, "timeline2")
	cpA(t, dd, tl2)
	fork3 := fork + (end1.Sequence-fork)/2
	e.mustRun("restore", "--space", sp, "--timeline", "1", "--to-seq", strconv.FormatUint(fork3, 10), "--target", dd)
	simRun(dd, 800, "4")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	end3 := e.simTruth(dd, sp)
	rg = e.timelines(sp)
	if len(rg.Timelines) != 3 || rg.Timeline != 3 || rg.Timelines[2].Parent != 1 || rg.Timelines[2].ForkSeq != fork3 {
		t.Fatalf("three timelines: %+v", rg)
	}
	n3 := e.checkTimeline(sp, nil, dd, lo1, end3.Sequence, 8)
	n += n3
	n += e.checkTimeline(sp, []string{"--timeline", "2"}, tl2, fork-5, end2.Sequence, 4)
	n += e.checkTimeline(sp, []string{"--timeline", "1"}, tl1, fork3-5, end1.Sequence, 4)
	t.Logf("%d point-in-time restores on three timelines matched their ground truth", n)
}

// TestTimelinesRewrittenWAL: a WAL truncated by hand (not by a memento
// restore) fails `wal archive` with exit 5 naming the segment and offsets
// and the way on; `wal archive --new-timeline` starts timeline 2 from what
// is on disk, and both timelines restore to their ground truth.
func TestTimelinesRewrittenWAL(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	const sp = "space-a"
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "20000", "--entries", "1500", "--segment-size", "48KiB",
		"--dim", "8", "--checkpoint-every", "100ms", "--seed", "5")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.sim("run", "--dir", dd, "--rate", "20000", "--entries", "1500", "--seed", "6")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	tl1 := filepath.Join(work, "timeline1")
	cpA(t, dd, tl1)
	end1 := e.simTruth(tl1, sp)

	// Cut the newest segment after its 10th entry, by hand.
	l, err := walreplay.OpenLog(filepath.Join(dd, "spaces", sp, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	last := segs[len(segs)-1]
	f, err := os.Open(last.Path)
	if err != nil {
		t.Fatal(err)
	}
	sr := walreplay.NewSegmentReader(f, last.Name)
	var cut int64
	for i := 0; i < 10; i++ {
		if _, err := sr.Next(); err != nil {
			t.Fatal(err)
		}
		cut = sr.End()
	}
	f.Close()
	if err := os.Truncate(last.Path, cut); err != nil {
		t.Fatal(err)
	}
	r := e.wantFail(exitCorrupt, "segment "+last.Name+" is "+strconv.FormatInt(cut, 10)+" bytes but", "wal", "archive", "--data-dir", dd, "--all")
	if !strings.Contains(r.stderr, "memento wal archive --new-timeline --space "+sp+" --data-dir "+dd) {
		t.Fatalf("the error does not say how to continue: %s", r.stderr)
	}
	// --new-timeline with nothing rewritten is refused.
	e.wantFail(exitUsage, "--new-timeline needs --space", "wal", "archive", "--data-dir", dd, "--all", "--new-timeline")
	out := e.mustRun("wal", "archive", "--data-dir", dd, "--space", sp, "--new-timeline")
	if !strings.Contains(out, "timeline 2 started from timeline 1 at seq "+strconv.FormatUint(last.FirstSeq-1, 10)) {
		t.Fatalf("wal archive --new-timeline: %s", out)
	}
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	e.wantFail(exitUsage, "no segment was truncated or rewritten", "wal", "archive", "--data-dir", dd, "--space", sp, "--new-timeline")
	end2 := e.simTruth(dd, sp)
	if end2.Sequence != last.FirstSeq+9 {
		t.Fatalf("the cut WAL ends at %d, want %d", end2.Sequence, last.FirstSeq+9)
	}
	rg := e.timelines(sp)
	if len(rg.Timelines) != 2 || rg.Timelines[1].ArchivedThrough != end2.Sequence || rg.Timelines[0].ArchivedThrough != end1.Sequence {
		t.Fatalf("timelines: %+v", rg)
	}
	lo := rg.Timelines[0].Ranges[0].FromSeq
	n := e.checkTimeline(sp, nil, dd, lo, end2.Sequence, 6)
	n += e.checkTimeline(sp, []string{"--timeline", "1"}, tl1, last.FirstSeq, end1.Sequence, 6)
	t.Logf("%d restores on two timelines matched", n)
}

// TestTwoDatabasesOneSpaceID: two data dirs that both have a space
// "space-a" back up and archive into one repository (concurrently):
// neither archive fails, commands naming only the space refuse with the
// candidates (exit 2), and --identity restores each to its own truth.
func TestTwoDatabasesOneSpaceID(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end identity test")
	}
	e := newEnv(t)
	work := t.TempDir()
	const sp = "space-a"
	dirs := []string{filepath.Join(work, "db1"), filepath.Join(work, "db2")}
	for i, dd := range dirs {
		e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "20000", "--entries", "1200", "--segment-size", "48KiB",
			"--dim", "8", "--checkpoint-every", "100ms", "--seed", strconv.Itoa(10+i))
	}
	// Back up and archive both at once.
	done := make(chan result, 4)
	for _, dd := range dirs {
		go func() { done <- e.runQuiet("backup", "--data-dir", dd, "--all") }()
	}
	for range dirs {
		if r := <-done; r.code != 0 {
			t.Fatalf("backup: exit %d: %s", r.code, r.stderr)
		}
	}
	for i, dd := range dirs {
		e.sim("run", "--dir", dd, "--rate", "20000", "--entries", "900", "--seed", strconv.Itoa(20+i))
	}
	for _, dd := range dirs {
		go func() { done <- e.runQuiet("wal", "archive", "--data-dir", dd, "--all") }()
	}
	for range dirs {
		if r := <-done; r.code != 0 {
			t.Fatalf("wal archive: exit %d: %s", r.code, r.stderr)
		}
	}
	ids := make([]string, 2)
	for i, dd := range dirs {
		id, err := engram.ReadIdentity(dd)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id.Identity
	}
	if ids[0] == ids[1] {
		t.Fatal("two data dirs got the same identity")
	}
	// Naming only the space is ambiguous.
	for _, args := range [][]string{
		{"pitr", "ranges", "--space", sp},
		{"restore", "--space", sp, "--to-seq", "5", "--target", filepath.Join(work, "never")},
		{"restore", "--space", sp, "--latest", "--target", filepath.Join(work, "never")},
	} {
		r := e.wantFail(exitUsage, "the space exists in more than one database", args...)
		for i, id := range ids {
			if !strings.Contains(r.stderr, id) || !strings.Contains(r.stderr, dirs[i]) {
				t.Fatalf("%v: the candidates are not listed (want %s and %s): %s", args, id, dirs[i], r.stderr)
			}
		}
		if !strings.Contains(r.stderr, "--identity") {
			t.Fatalf("%v: does not say how to choose: %s", args, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "never")); err == nil {
		t.Fatal("a refused restore created its target")
	}
	// --identity picks: each database restores to its own truth.
	n := 0
	for i, dd := range dirs {
		end := e.simTruth(dd, sp)
		rg := e.timelines(sp, "--identity", ids[i])
		if rg.Identity != ids[i] || len(rg.Timelines) != 1 || rg.Timelines[0].ArchivedThrough != end.Sequence {
			t.Fatalf("database %d: ranges %+v, want archived through %d", i, rg, end.Sequence)
		}
		lo := rg.Timelines[0].Ranges[0].FromSeq
		n += e.checkTimeline(sp, []string{"--identity", ids[i]}, dd, lo, end.Sequence, 6)
		// --host does not choose here: both are this host.
		host, _ := os.Hostname()
		e.wantFail(exitUsage, "more than one database", "pitr", "ranges", "--space", sp, "--host", host)
		// The plain restore of the latest snapshot is the database's own.
		dst := filepath.Join(work, "latest"+strconv.Itoa(i))
		e.mustRun("restore", "--space", sp, "--latest", "--identity", ids[i], "--target", dst)
		if id, err := engram.ReadIdentity(dst); err != nil || id.Identity != ids[i] {
			t.Fatalf("restore --latest --identity %s wrote identity %+v, %v", ids[i], id, err)
		}
	}
	// A restore into the other database's data dir is refused.
	e.wantFail(exitUsage, "is another database", "restore", "--space", sp, "--identity", ids[0], "--to-seq", "1500", "--target", dirs[1])
	t.Logf("%d restores of two databases matched their own truth", n)
}

// runQuiet is run without the test helper marks (for goroutines).
func (e *env) runQuiet(args ...string) result {
	cmd := exec.Command(mementoBin, args...)
	cmd.Env = e.environ()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return result{out.String(), errb.String(), code}
}

// TestTimelinesRestoreKilled: a point-in-time restore over a live data dir
// killed with SIGKILL at moments spread over its run leaves no half-recorded
// timeline: the space is either untouched (and the next `wal archive` stays
// on timeline 1, recording nothing) or restored (and the next `wal archive`
// records the new timeline forked at the restore point); `wal archive`
// succeeds either way.
func TestTimelinesRestoreKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	work := t.TempDir()
	base := filepath.Join(work, "base")
	const sp = "space-a"
	e.sim("run", "--dir", base, "--spaces", "1", "--rate", "20000", "--entries", "2000", "--segment-size", "48KiB",
		"--dim", "8", "--checkpoint-every", "100ms", "--seed", "31")
	e.mustRun("backup", "--data-dir", base, "--all")
	e.sim("run", "--dir", base, "--rate", "20000", "--entries", "2000", "--seed", "32")
	e.mustRun("wal", "archive", "--data-dir", base, "--all")
	orig := e.simTruth(base, sp)
	fork := orig.Sequence - 700
	want := e.simTruth(base, sp, "--to-seq", strconv.FormatUint(fork, 10))
	restoreArgs := func(dir string) []string {
		return []string{"restore", "--space", sp, "--timeline", "1", "--to-seq", strconv.FormatUint(fork, 10), "--target", dir}
	}
	// The reference run: how many progress steps a restore takes.
	ref := filepath.Join(work, "ref")
	cpA(t, base, ref)
	_, steps, r := runKilled(e, []string{filepath.Join(ref, "spaces"), filepath.Join(ref, ".memento")}, -1, restoreArgs(ref)...)
	if r.code != 0 {
		t.Fatalf("reference restore: exit %d: %s", r.code, r.stderr)
	}
	timelines := 1
	swapped, untouched := 0, 0
	for i := 0; i < 8; i++ {
		dir := filepath.Join(work, "trial"+strconv.Itoa(i))
		cpA(t, base, dir)
		at := i * max(steps, 8) / 8
		killed, _, r := runKilled(e, []string{filepath.Join(dir, "spaces"), filepath.Join(dir, ".memento")}, at, restoreArgs(dir)...)
		if !killed && r.code != 0 {
			t.Fatalf("trial %d: restore exit %d: %s", i, r.code, r.stderr)
		}
		got := e.simTruth(dir, sp)
		switch {
		case got == orig:
			untouched++
		case got.Sequence == want.Sequence && got.Digest == want.Digest:
			swapped++
			timelines++
		default:
			t.Fatalf("trial %d (killed %v at step %d): the space replays to %+v, neither the original %+v nor the restored %+v", i, killed, at, got, orig, want)
		}
		e.mustRun("wal", "archive", "--data-dir", dir, "--all")
		rg := e.timelines(sp)
		if len(rg.Timelines) != timelines {
			t.Fatalf("trial %d (killed %v at step %d, space %+v): %d timelines, want %d", i, killed, at, got, len(rg.Timelines), timelines)
		}
		if tl, err := engram.ReadTimelines(dir); err != nil || tl.Fork(sp) != nil {
			t.Fatalf("trial %d: a pending fork survived the archive: %+v, %v", i, tl, err)
		}
	}
	t.Logf("%d restores killed before the swap left the space untouched, %d were swapped in; no half-recorded timeline", untouched, swapped)
}

// TestTimelinesBackupsOnlyForkAtOlderSnapshot: a repository without a WAL
// archive holds its history in its snapshots alone. Restoring the older of
// two snapshots over the data dir (plain, then point-in-time to a point
// before the newest snapshot's end) must start a new timeline, as it does
// when the archive holds the later entries: otherwise the restored copy's
// next backups land on timeline 1 beside the original history, and a
// --to-seq past the restored point reads one history or the other (found
// by session 25's review, docs/benchmarks.md, rev25).
func TestTimelinesBackupsOnlyForkAtOlderSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end timelines test")
	}
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	const sp = "space-a"
	simRun := func(dir string, n int, seed string) {
		e.simTimelineRun(dir, n, seed)
	}
	simRun(dd, 1200, "1")
	e.mustRun("backup", "--data-dir", dd, "--all")
	first := e.snapshotsJSON()
	if len(first) != 1 {
		t.Fatalf("after the first backup: %d snapshots", len(first))
	}
	end1 := e.simTruth(dd, sp)
	simRun(dd, 1500, "2")
	e.mustRun("backup", "--data-dir", dd, "--all")
	tl1 := filepath.Join(work, "timeline1")
	cpA(t, dd, tl1)
	end2 := e.simTruth(tl1, sp)
	if end2.Sequence <= end1.Sequence {
		t.Fatalf("the second day wrote nothing: %d then %d", end1.Sequence, end2.Sequence)
	}

	// A restore killed after it recorded its pending fork and before the
	// swap leaves the space as it was: the next backup finds the WAL still
	// holds the newest snapshot's last entry and stays on timeline 1.
	tl, err := engram.ReadTimelines(dd)
	if err != nil {
		t.Fatal(err)
	}
	tl.SetFork(sp, 1, &engram.PendingFork{Seq: end1.Sequence, TS: end1.TimestampNS, Snapshot: first[0].ID, Target: "killed"})
	if err := engram.WriteTimelines(dd, tl); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", "--data-dir", dd, "--all")
	if tl, err := engram.ReadTimelines(dd); err != nil || tl.Of(sp) != 1 || tl.Fork(sp) != nil {
		t.Fatalf("after a backup of the untouched space under a pending fork: %+v, %v", tl, err)
	}
	if rg := e.timelines(sp); len(rg.Timelines) != 1 {
		t.Fatalf("the untouched space forked: %+v", rg)
	}

	// The older snapshot over the live dir: its end lies before the
	// newest snapshot's, so a fork is recorded (the repository has no
	// archive: the history past it is only in the newer snapshot).
	out := e.mustRun("restore", first[0].ID, "--target", dd)
	want := "records a new timeline forked at seq " + strconv.FormatUint(end1.Sequence, 10)
	if !strings.Contains(out, want) {
		t.Fatalf("restore of the older snapshot did not announce the new timeline (%q):\n%s", want, out)
	}
	simRun(dd, 900, "3")
	e.mustRun("backup", "--data-dir", dd, "--all")
	end3 := e.simTruth(dd, sp)
	rg := e.timelines(sp)
	if len(rg.Timelines) != 2 || rg.Timeline != 2 || rg.Timelines[1].Parent != 1 || rg.Timelines[1].ForkSeq != end1.Sequence {
		t.Fatalf("after the restored copy's backup: %+v", rg)
	}
	// Each timeline restores to its own history past the fork (without an
	// archive, the snapshots' ends are what can be recovered), and the
	// other timeline's end is refused, naming the timeline that has it.
	e.pitrOn(sp, []string{"--timeline", "1"}, "--to-seq", strconv.FormatUint(end2.Sequence, 10), end2)
	e.pitrOn(sp, nil, "--to-seq", strconv.FormatUint(end3.Sequence, 10), end3)
	e.pitrOn(sp, []string{"--timeline", "1"}, "--to-seq", strconv.FormatUint(end1.Sequence, 10), end1)
	if end3.Sequence != end2.Sequence {
		e.wantFail(exitUnrecoverable, "choose it with --timeline 1", "restore", "--space", sp, "--to-seq", strconv.FormatUint(end2.Sequence, 10), "--target", filepath.Join(work, "never"))
	}

	// A point-in-time restore on timeline 2 to a point before its newest
	// snapshot's end forks again (timeline 3, parent 2).
	tl2 := filepath.Join(work, "timeline2")
	cpA(t, dd, tl2)
	out = e.mustRun("restore", "--space", sp, "--to-seq", strconv.FormatUint(end1.Sequence, 10), "--target", dd)
	if want := "records a new timeline forked at seq " + strconv.FormatUint(end1.Sequence, 10); !strings.Contains(out, want) {
		t.Fatalf("point-in-time restore before timeline 2's newest snapshot did not announce a new timeline (%q):\n%s", want, out)
	}
	simRun(dd, 700, "4")
	e.mustRun("backup", "--data-dir", dd, "--all")
	rg = e.timelines(sp)
	if len(rg.Timelines) != 3 || rg.Timeline != 3 || rg.Timelines[2].Parent != 2 || rg.Timelines[2].ForkSeq != end1.Sequence {
		t.Fatalf("after the second fork: %+v", rg)
	}
	e.pitrOn(sp, []string{"--timeline", "2"}, "--to-seq", strconv.FormatUint(end3.Sequence, 10), e.simTruth(tl2, sp))
	e.pitrOn(sp, nil, "--to-seq", strconv.FormatUint(e.simTruth(dd, sp).Sequence, 10), e.simTruth(dd, sp))

	// The newest snapshot restored over the dir loses nothing: no fork.
	out = e.mustRun("restore", "--space", sp, "--to-seq", strconv.FormatUint(e.simTruth(dd, sp).Sequence, 10), "--target", dd)
	if strings.Contains(out, "records a new timeline") || !strings.Contains(out, "on timeline 3") {
		t.Fatalf("restore to the newest snapshot's end:\n%s", out)
	}
}
