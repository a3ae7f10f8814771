package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"memento/engram"
	"memento/walreplay"
)

// TestMain lets tests run the real command line in a child process (the
// test binary re-executed), for exit codes and signals.
func TestMain(m *testing.M) {
	if os.Getenv("ENGRAM_SIM_TEST_MAIN") == "1" {
		os.Exit(execute(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func simCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "ENGRAM_SIM_TEST_MAIN=1")
	return cmd
}

func runTestOpts(t *testing.T, dir string) runOpts {
	return runOpts{dir: dir, newIDs: []string{"space-a", "tenant_01"}, seed: 1, dim: 64, segSize: 64 << 10,
		mix: testMix(t), sameTS: 0.2, batch: 5 * time.Millisecond, ckptEvery: 20 * time.Millisecond,
		coldRows: 100, out: io.Discard}
}

func TestRunEntriesTruthAndTiers(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	o := runTestOpts(t, dir)
	o.entries, o.truth, o.truthEvery, o.fsyncLog, o.fsync = 1200, filepath.Join(tmp, "truth"), 100, filepath.Join(tmp, "fsync"), true
	o.rate = 4000 // 0.3 s: several checkpoints
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	lines := readTruth(t, o.truth)
	checkTruth(t, dir, lines)
	for _, id := range o.newIDs {
		l, err := walreplay.OpenLog(engram.WALDir(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sum.LastSeq != 600 || sum.TornTail || sum.Segments < 3 {
			t.Errorf("%s: %+v", id, sum)
		}
		ck, err := readCheckpoint(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		if ck.Sequence != 600 || ck.TimestampNS != sum.LastTS {
			t.Errorf("%s: checkpoint %+v after a clean stop, WAL ends at %d %d", id, ck, sum.LastSeq, sum.LastTS)
		}
		// Wall-clock timestamps: within the test's lifetime.
		if now := time.Now().UnixNano(); sum.FirstTS < now-int64(time.Minute) || sum.LastTS > now {
			t.Errorf("%s: timestamps %d..%d are not wall-clock", id, sum.FirstTS, sum.LastTS)
		}
		// Warm pages written in place, cold segments, hot files.
		wb, err := os.ReadFile(engram.WarmPath(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		if len(wb) == 0 || len(wb)%pageSize != 0 {
			t.Fatalf("%s: warm file %d bytes", id, len(wb))
		}
		for n := 0; n < len(wb)/pageSize; n++ {
			checkWarmPage(t, wb[n*pageSize:(n+1)*pageSize], uint32(n))
		}
		cold, _ := filepath.Glob(filepath.Join(engram.ColdDir(dir, id), "seg-*.col"))
		if len(cold) == 0 {
			t.Errorf("%s: no cold segment", id)
		}
		for _, c := range cold {
			checkColdSegment(t, c, 64)
		}
		for _, h := range engram.HotFiles {
			if _, err := os.Stat(filepath.Join(engram.HotDir(dir, id), h)); err != nil {
				t.Error(err)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(engram.SpaceDir(dir, id), "*", "*.tmp")); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
	// The fsync log: per space, increasing sequences up to the end, fsynced.
	f, err := os.Open(o.fsyncLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	last := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l fsyncLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		if l.Sequence <= last[l.Space] || !l.Fsync || l.FsyncNS < l.TimestampNS {
			t.Errorf("fsync line %s after seq %d", sc.Text(), last[l.Space])
		}
		last[l.Space] = l.Sequence
	}
	if last["space-a"] != 600 || last["tenant_01"] != 600 {
		t.Errorf("fsync log ends at %v", last)
	}
}

func TestRunCrashLeavesTornTail(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	o := runTestOpts(t, dir)
	o.entries = 100
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	o.entries, o.crashAfter, o.truth = 0, 301, filepath.Join(tmp, "truth")
	err := run(context.Background(), o)
	var ce *exitCodeError
	if !errors.As(err, &ce) || ce.code != exitCrash || !errors.Is(err, errCrashed) {
		t.Fatalf("err = %v, want a crash with exit code 3", err)
	}
	if !strings.Contains(err.Error(), "simulated crash after 301 entries: torn tails: space-a wal-") {
		t.Errorf("message %q", err)
	}
	lines := readTruth(t, o.truth)
	want := map[string]uint64{"space-a": 50 + 151, "tenant_01": 50 + 150}
	for _, id := range o.newIDs {
		l, err := walreplay.OpenLog(engram.WALDir(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.Verify(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !sum.TornTail || sum.LastSeq != want[id] {
			t.Errorf("%s: summary %+v, want a torn tail after seq %d", id, sum, want[id])
		}
		var last truthLine
		for _, l := range lines {
			if l.Space == id {
				last = l
			}
		}
		pos, d := replayDigest(t, dir, id, walreplay.Target{})
		if last.Sequence != want[id] || pos.Seq != want[id] || d != last.Digest {
			t.Errorf("%s: truth %+v, replay to the end gives %d %s", id, last, pos.Seq, d)
		}
	}
	checkTruth(t, dir, lines)

	// Resuming cuts the torn tail and continues the sequence.
	o.crashAfter, o.entries, o.truth = 0, 20, filepath.Join(tmp, "truth2")
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, id := range o.newIDs {
		l, _ := walreplay.OpenLog(engram.WALDir(dir, id))
		sum, err := l.Verify(context.Background())
		if err != nil || sum.TornTail || sum.LastSeq != want[id]+10 {
			t.Errorf("%s after resume: %+v %v", id, sum, err)
		}
	}
	checkTruth(t, dir, readTruth(t, o.truth))
}

// TestRunContentDeterministic: the same seed writes the same records (only
// the wall-clock timestamps differ), so digests at equal sequences match.
func TestRunContentDeterministic(t *testing.T) {
	tmp := t.TempDir()
	var digests [2][]truthLine
	for i := range 2 {
		o := runTestOpts(t, filepath.Join(tmp, "d"+string(rune('0'+i))))
		o.entries, o.truth, o.truthEvery = 400, filepath.Join(tmp, "t"+string(rune('0'+i))), 0
		if err := run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		digests[i] = readTruth(t, o.truth)
	}
	if len(digests[0]) != 2 {
		t.Fatalf("truth lines %v", digests[0])
	}
	// Spaces finish in any order: compare by space.
	second := map[string]truthLine{}
	for _, l := range digests[1] {
		second[l.Space] = l
	}
	for _, a := range digests[0] {
		b := second[a.Space]
		if a.Sequence != 200 || a.Sequence != b.Sequence || a.Digest != b.Digest {
			t.Errorf("run 1 %+v, run 2 %+v", a, b)
		}
	}
}

func TestRunRespectsRate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	o := runTestOpts(t, dir)
	o.rate, o.duration = 1000, 300*time.Millisecond
	var out bytes.Buffer
	o.out = &out
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, id := range o.newIDs {
		l, _ := walreplay.OpenLog(engram.WALDir(dir, id))
		sum, err := l.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		total += sum.LastSeq
	}
	// Never faster than the rate (plus one batch); slower only on a loaded machine.
	if total == 0 || total > 300 {
		t.Errorf("wrote %d entries in 300ms at 1000/s", total)
	}
}

// TestRunBinaryCrashAndSignal runs the real command line: --crash-after
// exits 3 with a message; SIGTERM stops cleanly with exit 0 and a final
// truth line.
func TestRunBinaryCrashAndSignal(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	cmd := simCommand(t, "run", "--dir", dir, "--spaces", "1", "--rate", "0", "--crash-after", "50", "--dim", "16")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "simulated crash after 50 entries") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}

	truth := filepath.Join(tmp, "truth")
	cmd = simCommand(t, "run", "--dir", dir, "--rate", "500", "--truth", truth, "--truth-every", "1000000")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, stdout.String())
	}
	lines := readTruth(t, truth)
	if len(lines) != 1 || lines[0].Sequence <= 50 {
		t.Fatalf("truth after SIGTERM: %+v\n%s", lines, stdout.String())
	}
	checkTruth(t, dir, lines)
	ck, err := readCheckpoint(dir, "space-a")
	if err != nil || ck.Sequence != lines[0].Sequence {
		t.Errorf("checkpoint %+v %v, want the last sequence %d", ck, err, lines[0].Sequence)
	}
}
