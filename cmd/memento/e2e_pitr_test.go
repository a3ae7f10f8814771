package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/repo/repotest"
	"memento/walreplay"
)

// truthRec is one ground-truth line of engram-sim.
type truthRec struct {
	Space       string `json:"space"`
	Sequence    uint64 `json:"sequence"`
	TimestampNS int64  `json:"timestamp_ns"`
	// Digest is the state digest version 2 (what this binary's format-5
	// repositories record and restores print); DigestV1 version 1 (what
	// `wal replay` prints by default). engram-sim prints them as digest_v2
	// and digest: fromSim swaps them in.
	Digest   string `json:"digest_v2"`
	DigestV1 string `json:"digest"`
}

func readTruth(t *testing.T, path string) []truthRec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []truthRec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r truthRec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("truth line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// lockedBuffer collects a background process's output while the test reads
// it: exec copies into it from its own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start launches a binary in the background with the env's environment.
func (e *env) start(bin string, args ...string) (*exec.Cmd, *lockedBuffer) {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = e.environ()
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd, &out
}

// simTruth asks engram-sim for the state of a data dir's space at a target,
// replaying that dir's WAL independently of memento.
func (e *env) simTruth(dir, space string, target ...string) truthRec {
	e.t.Helper()
	out := e.sim(append([]string{"truth", "--dir", dir, "--space", space}, target...)...)
	var r truthRec
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("engram-sim truth output %q: %v", out, err)
	}
	return r
}

var recoveredRe = regexp.MustCompile(`recovered space (\S+) to seq (\d+) at (\S+) \(state digest ([0-9a-f]{64})(?:, kind lthash16)?\)`)

// pitr restores space to target into a fresh data dir, checks the printed
// position and digest against want, and checks the restored data dir
// independently with engram-sim truth (its WAL replayed to its end must give
// the same position and digest).
func (e *env) pitr(space, flag, value string, want truthRec) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "restored")
	out := e.mustRun("restore", "--space", space, flag, value, "--target", dst)
	m := recoveredRe.FindStringSubmatch(out)
	if m == nil {
		e.t.Fatalf("restore %s %s: no recovery line in %q", flag, value, out)
	}
	if m[2] != strconv.FormatUint(want.Sequence, 10) || m[4] != want.Digest {
		e.t.Fatalf("restore %s %s: got seq %s digest %s, want seq %d digest %s", flag, value, m[2], m[4], want.Sequence, want.Digest)
	}
	got := e.simTruth(dst, space)
	if got.Sequence != want.Sequence || got.Digest != want.Digest || got.TimestampNS != want.TimestampNS {
		e.t.Fatalf("restore %s %s: the restored data dir replays to %+v, want %+v", flag, value, got, want)
	}
}

// sharedTimestamps returns timestamps carried by several consecutive entries
// of the space's WAL in dir, within [lo, hi].
func sharedTimestamps(t *testing.T, dir, space string, lo, hi uint64) []int64 {
	t.Helper()
	l, err := walreplay.OpenLog(filepath.Join(dir, "spaces", space, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	var prevTS int64
	var prevSeq uint64
	for _, s := range l.Segments() {
		f, err := os.Open(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		sr := walreplay.NewSegmentReader(f, s.Name)
		for {
			e, err := sr.Next()
			if err != nil {
				break
			}
			if e.TimestampNS == prevTS && e.Seq == prevSeq+1 && e.Seq > lo && e.Seq <= hi && (len(out) == 0 || out[len(out)-1] != prevTS) {
				out = append(out, prevTS)
			}
			prevTS, prevSeq = e.TimestampNS, e.Seq
		}
		f.Close()
	}
	return out
}

type rangesJSON struct {
	Ranges []struct {
		FromSeq uint64 `json:"from_seq"`
		FromTS  int64  `json:"from_ts"`
		ToSeq   uint64 `json:"to_seq"`
		ToTS    int64  `json:"to_ts"`
	} `json:"ranges"`
	ArchivedSeq uint64 `json:"archived_seq"`
}

func (e *env) ranges(space string) rangesJSON {
	e.t.Helper()
	var r rangesJSON
	if err := json.Unmarshal([]byte(e.mustRun("pitr", "ranges", "--space", space, "--json")), &r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestPITRWhileWriting is the end-to-end test: engram-sim writes at a
// steady rate while a full backup runs and `wal watch` archives continuously
// (restarted once); then 50+ instants are restored and every restored data
// dir's state digest is compared with engram-sim's ground truth.
func TestPITRWhileWriting(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end PITR test writes for ~8 s")
	}
	e := newEnv(t)
	work := t.TempDir()
	dd, truth := filepath.Join(work, "dd"), filepath.Join(work, "truth.jsonl")
	sim, simOut := e.start(engramSimBin, "run", "--dir", dd, "--spaces", "2", "--rate", "1500", "--duration", "7s",
		"--segment-size", "192KiB", "--dim", "16", "--same-ts", "0.3", "--truth", truth, "--truth-every", "97",
		"--checkpoint-every", "500ms", "--seed", "7")
	time.Sleep(1500 * time.Millisecond)
	e.mustRun("backup", "--data-dir", dd, "--all")
	watch, watchOut := e.start(mementoBin, "wal", "watch", "--data-dir", dd, "--all", "--interval", "400ms")
	time.Sleep(2 * time.Second)
	// A restart must continue from the repository's position.
	_ = watch.Process.Signal(syscall.SIGTERM)
	if err := watch.Wait(); err != nil {
		t.Fatalf("wal watch did not stop cleanly: %v\n%s", err, watchOut)
	}
	watch, watchOut = e.start(mementoBin, "wal", "watch", "--data-dir", dd, "--all", "--interval", "400ms")
	if err := sim.Wait(); err != nil {
		t.Fatalf("engram-sim run: %v\n%s", err, simOut)
	}
	final := map[string]truthRec{}
	for _, sp := range []string{"space-a", "space-b"} {
		final[sp] = e.simTruth(dd, sp)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, sp := range []string{"space-a", "space-b"} {
		for e.ranges(sp).ArchivedSeq < final[sp].Sequence {
			if time.Now().After(deadline) {
				t.Fatalf("wal watch did not archive %s through seq %d\n%s", sp, final[sp].Sequence, watchOut)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	_ = watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Fatalf("wal watch: %v\n%s", err, watchOut)
	}
	for _, l := range strings.Split(watchOut.String(), "\n") { // info lines are fine, nothing else is
		if strings.HasPrefix(l, "memento:") && !strings.HasPrefix(l, "memento: info: ") {
			t.Fatalf("wal watch reported errors:\n%s", watchOut)
		}
	}
	// Nothing is left to ship: the position lives in the repository.
	var again []struct {
		Segments int   `json:"segments"`
		NewBytes int64 `json:"new_bytes"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("wal", "archive", "--data-dir", dd, "--all", "--json")), &again); err != nil {
		t.Fatal(err)
	}
	for _, r := range again {
		if r.Segments != 0 || r.NewBytes != 0 {
			t.Fatalf("a new archiver re-shipped %+v after watch had archived everything", again)
		}
	}

	rng := rand.New(rand.NewPCG(7, 7))
	lines := readTruth(t, truth)
	restores := 0
	for _, sp := range []string{"space-a", "space-b"} {
		rg := e.ranges(sp)
		if len(rg.Ranges) != 1 || rg.Ranges[0].ToSeq != final[sp].Sequence {
			t.Fatalf("space %s: ranges %+v, want one range ending at seq %d", sp, rg, final[sp].Sequence)
		}
		lo, hi := rg.Ranges[0].FromSeq, rg.Ranges[0].ToSeq
		var cands []truthRec
		for _, l := range lines {
			if l.Space == sp && l.Sequence > lo && l.Sequence <= hi {
				cands = append(cands, l)
			}
		}
		if len(cands) < 15 {
			t.Fatalf("space %s: only %d truth lines in range %d..%d", sp, len(cands), lo, hi)
		}
		rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
		// Exact entry timestamps, checked against the truth file itself.
		for _, c := range cands[:10] {
			e.pitr(sp, "--at", strconv.FormatInt(c.TimestampNS, 10), c)
			restores++
		}
		// One nanosecond before and after, as RFC 3339, and sequences; an
		// instant outside the archived range (1 ns after its last entry) is
		// not a point the range promises.
		for _, c := range cands[10:15] {
			for _, d := range []int64{-1, 1} {
				ts := c.TimestampNS + d
				if ts < rg.Ranges[0].FromTS || ts > rg.Ranges[0].ToTS {
					continue
				}
				want := e.simTruth(dd, sp, "--at", strconv.FormatInt(ts, 10))
				if want.Sequence < lo {
					continue
				}
				e.pitr(sp, "--at", walreplay.FormatTime(ts), want)
				restores++
			}
			e.pitr(sp, "--to-seq", strconv.FormatUint(c.Sequence, 10), c)
			restores++
		}
		// Instants shared by several entries: all of them are included.
		shared := sharedTimestamps(t, dd, sp, lo, hi)
		if len(shared) < 5 {
			t.Fatalf("space %s: only %d shared timestamps", sp, len(shared))
		}
		rng.Shuffle(len(shared), func(i, j int) { shared[i], shared[j] = shared[j], shared[i] })
		for _, ts := range shared[:5] {
			want := e.simTruth(dd, sp, "--at", strconv.FormatInt(ts, 10))
			e.pitr(sp, "--at", strconv.FormatInt(ts, 10), want)
			restores++
		}
	}
	if restores < 50 {
		t.Fatalf("only %d restores", restores)
	}
	t.Logf("%d point-in-time restores matched the ground truth", restores)

	// Accidental-deletion drill: the space directory is gone; restore it in
	// place to its last archived instant.
	if err := os.RemoveAll(filepath.Join(dd, "spaces", "space-a")); err != nil {
		t.Fatal(err)
	}
	out := e.mustRun("restore", "--space", "space-a", "--at", walreplay.FormatTime(final["space-a"].TimestampNS), "--target", dd)
	if m := recoveredRe.FindStringSubmatch(out); m == nil || m[4] != final["space-a"].Digest {
		t.Fatalf("deletion drill: %q, want digest %s", out, final["space-a"].Digest)
	}
	if got := e.simTruth(dd, "space-a"); got != final["space-a"] {
		t.Fatalf("deletion drill: restored space replays to %+v, want %+v", got, final["space-a"])
	}

	// Out of reach: before the first backup and after the last entry.
	early := rangesFor(e, "space-b").FromSeq - 1
	e.wantFail(exitUnrecoverable, "it is before the first backup; recoverable ranges: seq ", "restore", "--space", "space-b",
		"--to-seq", strconv.FormatUint(early, 10), "--target", filepath.Join(work, "never"))
	e.wantFail(exitUnrecoverable, "after the last archived entry", "restore", "--space", "space-b",
		"--at", walreplay.FormatTime(final["space-b"].TimestampNS+1), "--target", filepath.Join(work, "never"))
	if _, err := os.Stat(filepath.Join(work, "never")); err == nil {
		t.Fatal("a refused restore created its target")
	}

	// A corrupted archived chunk: flip a byte in the newest pack (written by
	// the last archive run); the restore names the pack and writes nothing.
	pack := newestPack(t, e.repo)
	repotest.FlipByte(t, pack, 100)
	failed := 0
	for _, sp := range []string{"space-a", "space-b"} {
		dst := filepath.Join(work, "corrupt-"+sp)
		r := e.run("restore", "--space", sp, "--at", walreplay.FormatTime(final[sp].TimestampNS), "--target", dst)
		if r.code == 0 {
			continue
		}
		failed++
		if r.code != exitCorrupt || !strings.Contains(r.stderr, "archived WAL segment") || !strings.Contains(r.stderr, "pack "+filepath.Base(pack)[:8]) {
			t.Fatalf("restore over a corrupted pack %s: exit %d: %s", filepath.Base(pack)[:8], r.code, r.stderr)
		}
		assertNothingRestored(t, dst)
	}
	if failed != 1 {
		t.Fatalf("%d restores failed over one corrupted pack, want 1", failed)
	}
}

func rangesFor(e *env, space string) struct{ FromSeq, ToSeq uint64 } {
	rg := e.ranges(space)
	if len(rg.Ranges) == 0 {
		e.t.Fatalf("space %s: no ranges", space)
	}
	return struct{ FromSeq, ToSeq uint64 }{rg.Ranges[0].FromSeq, rg.Ranges[len(rg.Ranges)-1].ToSeq}
}

func newestPack(t *testing.T, repoDir string) string {
	t.Helper()
	var packs []string
	filepath.Walk(filepath.Join(repoDir, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			packs = append(packs, p)
		}
		return nil
	})
	sort.Slice(packs, func(i, j int) bool {
		a, _ := os.Stat(packs[i])
		b, _ := os.Stat(packs[j])
		return a.ModTime().Before(b.ModTime())
	})
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	return packs[len(packs)-1]
}

// assertNothingRestored checks that a failed restore left no trace: no space
// directory and no temporary directory beside it.
func assertNothingRestored(t *testing.T, dataDir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "spaces"))
	if err != nil {
		return // not even spaces/ exists... except MkdirAll may have made it
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("a failed restore left %v in %s", names, dataDir)
	}
}

// TestPITRTornTailGapAndMissingRange covers the source-side failures: a torn
// tail left by a crash (archived up to the last complete entry), a sealed
// segment with a torn tail (an error naming the segment and offset), and
// segments lost before they were archived (an error naming the missing range,
// and a restore into that range refused with the recoverable ranges).
func TestPITRTornTailGapAndMissingRange(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	r := e.runBin(engramSimBin, "run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "3000",
		"--segment-size", "64KiB", "--dim", "16", "--crash-after", "3000", "--seed", "3")
	if r.code != 3 {
		t.Fatalf("engram-sim --crash-after: exit %d: %s", r.code, r.stderr)
	}
	e.mustRun("backup", "--data-dir", dd, "--all")
	out := e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	if !strings.Contains(out, "torn tail") || !strings.Contains(out, "archived through seq 3000") {
		t.Fatalf("archive of a torn tail: %q", out)
	}
	want := e.simTruth(dd, "space-a")
	e.pitr("space-a", "--to-seq", "3000", want)
	e.wantFail(exitUnrecoverable, "after the last archived entry (seq 3000", "restore", "--space", "space-a", "--to-seq", "3001",
		"--target", filepath.Join(work, "never"))

	// More entries (the writer cuts the torn tail and goes on), archived;
	// then more again, and the database drops its old segments before they
	// are archived, as a database deleting segments after a checkpoint does.
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "3000")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	archivedEnd := e.ranges("space-a").ArchivedSeq
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "3000")
	walDir := filepath.Join(dd, "spaces", "space-a", "wal")
	segs, err := walreplay.ListSegments(walDir)
	if err != nil {
		t.Fatal(err)
	}
	keepFrom := segs[len(segs)-4]
	var dropped []walreplay.SegmentInfo
	for _, s := range segs {
		if s.FirstSeq < keepFrom.FirstSeq {
			if err := os.Rename(s.Path, filepath.Join(work, s.Name)); err != nil {
				t.Fatal(err)
			}
			if s.FirstSeq > archivedEnd {
				dropped = append(dropped, s)
			}
		}
	}
	if len(dropped) < 2 {
		t.Fatalf("only %d unarchived segments dropped", len(dropped))
	}
	missing := fmt.Sprintf("sequences %d..%d are missing", archivedEnd+1, keepFrom.FirstSeq-1)
	e.wantFail(exitCorrupt, missing, "wal", "archive", "--data-dir", dd, "--all")
	e.mustRun("backup", "--data-dir", dd, "--all")
	rg := e.ranges("space-a")
	if len(rg.Ranges) != 2 {
		t.Fatalf("ranges %+v, want two (before and after the missing segments)", rg)
	}
	r = e.wantFail(exitUnrecoverable, "it falls in a gap of the archived WAL; recoverable ranges: seq ", "restore", "--space", "space-a",
		"--to-seq", strconv.FormatUint(archivedEnd+2, 10), "--target", filepath.Join(work, "never"))
	if strings.Count(r.stderr, "seq ") < 3 {
		t.Fatalf("refusal does not list both ranges: %s", r.stderr)
	}
	assertNothingRestored(t, filepath.Join(work, "never"))

	// A sealed segment that ends in a torn tail is corruption: put a
	// dropped one back with its last bytes cut off.
	lost := dropped[1]
	b, err := os.ReadFile(filepath.Join(work, lost.Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(walDir, lost.Name), b[:len(b)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.wantFail(exitCorrupt, "sealed segment ends in a torn tail", "wal", "archive", "--data-dir", dd, "--all")
	if !strings.Contains(r.stderr, lost.Name) {
		t.Fatalf("torn sealed segment error does not name the segment: %s", r.stderr)
	}
	if rg2 := e.ranges("space-a"); len(rg2.Ranges) != 2 || rg2.ArchivedSeq != rg.ArchivedSeq {
		t.Fatalf("a failed archive changed the archive: %+v, was %+v", rg2, rg)
	}
}

// TestWatchRPO measures the recovery point objective of `wal watch
// --interval 1s` while engram-sim writes 5,000 entries/s (768-dim records,
// fsync per batch): for every durable batch (engram-sim --fsync-log), the
// time from its fsync to the end of the first archive run that holds it
// (wal watch --ship-log). It runs only with MEMENTO_RPO=1 (it takes ~20 s
// and loads both cores); `MEMENTO_RPO=1 go test -run TestWatchRPO -v
// ./cmd/memento` prints p50/p99/max.
func TestWatchRPO(t *testing.T) {
	if os.Getenv("MEMENTO_RPO") == "" {
		t.Skip("set MEMENTO_RPO=1 to measure the RPO of wal watch")
	}
	e := newEnv(t)
	work := t.TempDir()
	dd, fsyncLog, shipLog := filepath.Join(work, "dd"), filepath.Join(work, "fsync.jsonl"), filepath.Join(work, "ship.jsonl")
	e.sim("run", "--dir", dd, "--spaces", "3", "--rate", "0", "--entries", "3000")
	watch, watchOut := e.start(mementoBin, "wal", "watch", "--data-dir", dd, "--all", "--interval", "1s", "--ship-log", shipLog)
	time.Sleep(2 * time.Second)
	e.sim("run", "--dir", dd, "--rate", "5000", "--duration", "15s", "--fsync", "--fsync-log", fsyncLog)
	time.Sleep(3 * time.Second)
	_ = watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Fatalf("wal watch: %v\n%s", err, watchOut)
	}
	type fl struct {
		Space    string `json:"space"`
		Sequence uint64 `json:"sequence"`
		FsyncNS  int64  `json:"fsync_ns"`
	}
	type sl struct {
		Space     string `json:"space"`
		LastSeq   uint64 `json:"last_seq"`
		ShippedNS int64  `json:"shipped_ns"`
	}
	readJSONL := func(p string, each func([]byte)) {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			each(sc.Bytes())
		}
	}
	ships := map[string][]sl{}
	readJSONL(shipLog, func(b []byte) {
		var s sl
		if json.Unmarshal(b, &s) == nil {
			ships[s.Space] = append(ships[s.Space], s)
		}
	})
	var lags []time.Duration
	readJSONL(fsyncLog, func(b []byte) {
		var f fl
		if json.Unmarshal(b, &f) != nil {
			return
		}
		for _, s := range ships[f.Space] {
			if s.LastSeq >= f.Sequence {
				lags = append(lags, time.Duration(s.ShippedNS-f.FsyncNS))
				return
			}
		}
		t.Errorf("space %s seq %d (fsynced) was never archived", f.Space, f.Sequence)
	})
	if len(lags) == 0 {
		t.Fatal("no batches measured")
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	pct := func(p float64) time.Duration { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
	t.Logf("RPO over %d fsynced batches: p50 %s, p99 %s, max %s", len(lags), pct(0.50).Round(time.Millisecond),
		pct(0.99).Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
	if pct(0.99) > time.Second {
		t.Errorf("p99 RPO %s exceeds 1 s", pct(0.99))
	}
}

// TestWALCompact compacts 100+ segments of a workload with updates and
// deletes: it refuses while nothing is archived, then cuts the WAL by more
// than half, keeps the originals, leaves a WAL that verifies and replays to
// the same state, and point-in-time recovery inside the compacted run still
// works from the archive.
func TestWALCompact(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "10000", "--segment-size", "64KiB",
		"--dim", "16", "--mix", "store=40,update=40,delete=20", "--seed", "5")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "30000", "--mix", "store=40,update=40,delete=20", "--seed", "5")
	walDir := filepath.Join(dd, "spaces", "space-a", "wal")
	segs, err := walreplay.ListSegments(walDir)
	if err != nil || len(segs) < 101 {
		t.Fatalf("%d segments (%v), want > 100", len(segs), err)
	}
	e.wantFail(exitFailure, "is not fully archived in the repository yet", "wal", "compact", "--data-dir", dd, "--space", "space-a")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	mid := e.simTruth(dd, "space-a", "--to-seq", "20000")
	end := e.simTruth(dd, "space-a")
	var res struct {
		Segments    int    `json:"segments"`
		BytesBefore int64  `json:"bytes_before"`
		BytesAfter  int64  `json:"bytes_after"`
		KeptIn      string `json:"kept_in"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("wal", "compact", "--data-dir", dd, "--space", "space-a", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	after, _ := walreplay.ListSegments(walDir)
	var totalAfter int64
	for _, s := range after {
		totalAfter += s.Size
	}
	t.Logf("compacted %d segments: %d -> %d bytes; WAL %d -> %d bytes (%.0f %% smaller)", res.Segments, res.BytesBefore, res.BytesAfter,
		total, totalAfter, 100-100*float64(totalAfter)/float64(total))
	if res.Segments < 100 || totalAfter*2 > total {
		t.Fatalf("compaction of %d segments left %d of %d bytes", res.Segments, totalAfter, total)
	}
	if kept, _ := os.ReadDir(res.KeptIn); len(kept) != res.Segments {
		t.Fatalf("%d originals kept in %s, want %d", len(kept), res.KeptIn, res.Segments)
	}
	e.mustRun("wal", "verify", "--data-dir", dd, "--space", "space-a")
	if got := e.simTruth(dd, "space-a"); got != end {
		t.Fatalf("compacted WAL replays to %+v, want %+v", got, end)
	}
	// The compacted segment is archived beside the originals; recovery
	// inside the compacted run uses the originals.
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	e.pitr("space-a", "--to-seq", "20000", mid)
	e.pitr("space-a", "--at", walreplay.FormatTime(end.TimestampNS), end)
}

// TestBackupQuiesce checks that --quiesce-pid pauses and resumes the
// database, and that --post-hook runs even when the backup fails.
func TestBackupQuiesce(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	dd, log := filepath.Join(work, "dd"), filepath.Join(work, "signals")
	e.sim("run", "--dir", dd, "--spaces", "2", "--rate", "0", "--entries", "2000", "--dim", "16")
	// The stand-in database logs the signals it handles. It says "ready"
	// once its traps are set (before that, SIGUSR1 would kill it).
	db := exec.Command("/bin/sh", "-c", `trap 'echo pause >> "$LOG"' USR1; trap 'echo resume >> "$LOG"' USR2; echo ready >> "$LOG"; while :; do sleep 0.02; done`)
	db.Env = append(os.Environ(), "LOG="+log)
	if err := db.Start(); err != nil {
		t.Fatal(err)
	}
	defer db.Process.Kill()
	waitForLog(t, log, regexp.MustCompile(`^ready\n$`))
	out := e.mustRun("backup", "--data-dir", dd, "--all", "--quiesce-pid", strconv.Itoa(db.Process.Pid))
	if !strings.Contains(out, "database paused for") {
		t.Fatalf("the pause is not reported: %q", out)
	}
	// Each space pauses only for a local copy of its in-place tiers, so two
	// spaces may pause once each or share one pause. The kernel keeps one
	// pending bit per signal and the shell runs pending traps in signal
	// number order, so a resume and the next pause that arrive together are
	// logged as pause, resume: the order of the lines is not the order they
	// were sent in. What must hold: one or two pauses, as many resumes
	// (signals of one kind may merge, so at most that many), and the
	// database ends resumed, as the last signal sent is a resume.
	b := waitForLog(t, log, regexp.MustCompile(`^ready\n(pause\n|resume\n)*resume\n$`))
	pauses, resumes := strings.Count(string(b), "pause\n"), strings.Count(string(b), "resume\n")
	if pauses < 1 || pauses > 2 || resumes > 2 {
		t.Fatalf("signals seen by the database: %q, want one or two pauses and resumes, ending resumed", b)
	}
	// The tiers were backed up from copies made during the pause: the
	// snapshot must hold exactly the data dir's bytes, and no copy remains.
	restored := filepath.Join(work, "restored")
	e.mustRun("restore", "--all", "--latest", "--target", restored)
	sameTree(t, filepath.Join(dd, "spaces"), filepath.Join(restored, "spaces"))
	if left, _ := filepath.Glob(filepath.Join(dd, ".memento-stage-*")); len(left) > 0 {
		t.Fatalf("staged copies left behind: %v", left)
	}
	// A WAL that does not verify is found after the pause (the snapshot is
	// saved and marked damaged, exit 5): the post-hook must still run.
	segs, _ := walreplay.ListSegments(filepath.Join(dd, "spaces", "space-a", "wal"))
	repotest.FlipByte(t, segs[0].Path, 40)
	hooks := filepath.Join(work, "hooks")
	r := e.run("backup", "--data-dir", dd, "--space", "space-a", "--pre-hook", "echo pre >> "+hooks, "--post-hook", "echo post >> "+hooks)
	if r.code != exitCorrupt {
		t.Fatalf("backup of a corrupt WAL: exit %d, want %d: %s", r.code, exitCorrupt, r.stderr)
	}
	if b, _ := os.ReadFile(hooks); string(b) != "pre\npost\n" {
		t.Fatalf("hooks ran %q, want pre then post", b)
	}
}

// waitForLog polls file until its content matches re and returns it; it
// fails the test if that takes more than a minute (a loaded machine).
func waitForLog(t *testing.T, file string, re *regexp.Regexp) []byte {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(file)
		if re.Match(b) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q does not match %s after a minute", file, b, re)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
