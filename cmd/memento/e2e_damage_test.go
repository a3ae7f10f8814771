package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"memento/walreplay"
)

// loseLargestPack deletes the largest of the packs written since before
// (a map from packsOf) and returns its path.
func loseLargestPack(t *testing.T, repo string, before map[string]bool) string {
	t.Helper()
	var victim string
	var size int64
	for p := range packsOf(t, repo) {
		if before[p] {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > size {
			victim, size = p, fi.Size()
		}
	}
	if victim == "" {
		t.Fatal("no new pack to lose")
	}
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	return victim
}

// restoresSpace restores the latest snapshot of space and compares every
// restored file with the data dir's.
func (e *env) restoresSpace(dd, space string) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "restored")
	e.mustRun("restore", "--space", space, "--latest", "--target", dst)
	sameDigest(e.t, "restored "+space, repoTreeDigest(e.t, filepath.Join(dd, "spaces", space)),
		repoTreeDigest(e.t, filepath.Join(dst, "spaces", space)))
}

// TestE2ELostPackThenBackups is issue 19 item 3: after a pack is lost, the
// next backups (plain, and --force) must not deduplicate against it nor reuse
// the parent's content lists that name its chunks: each one is restorable.
func TestE2ELostPackThenBackups(t *testing.T) {
	e := newEnv(t)
	dd := e.simData("19")
	e.mustRun("backup", "--data-dir", dd, "--space", "space-b")
	before := packsOf(t, e.repo)
	e.mustRun("backup", "--data-dir", dd, "--space", "space-a")
	lost := loseLargestPack(t, e.repo, before)

	r := e.run("backup", "--data-dir", dd, "--space", "space-a")
	if r.code != 0 {
		t.Fatalf("backup after losing pack %s: exit %d\n%s%s", filepath.Base(lost), r.code, r.stdout, r.stderr)
	}
	e.restoresSpace(dd, "space-a")
	if !strings.Contains(r.stderr, "packs missing or damaged") || !strings.Contains(r.stderr, filepath.Base(lost)[:8]) {
		t.Fatalf("backup after losing pack %s does not say so:\n%s", filepath.Base(lost), r.stderr)
	}
	e.mustRun("verify", "--space", "space-a", "--latest", "--level", "L2")
	e.mustRun("backup", "--data-dir", dd, "--space", "space-a", "--force")
	e.restoresSpace(dd, "space-a")
	e.mustRun("verify", "--space", "space-a", "--latest", "--level", "L2")
	// The second backup found the lost data stored again: nothing new.
	e.mustRun("backup", "--data-dir", dd, "--space", "space-a")
	e.restoresSpace(dd, "space-a")
	// The lost chunks are stored again under the same IDs, so even the
	// first snapshot restores again; check still names the lost pack.
	r = e.run("check")
	if r.code != exitCorrupt || !strings.Contains(r.stdout, filepath.Base(lost)[:8]+": listed by index file") ||
		!strings.Contains(r.stdout, "(5 intact)") {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestE2ELostPackRepairThenBackup: a data pack is lost while the trees
// that name its chunks survive (they were rewritten into a later pack); after
// check --repair marks the damaged snapshots, a plain backup (whose parent is
// a damaged snapshot with readable trees) must read the unchanged file again
// instead of reusing the parent's chunk list.
func TestE2ELostPackRepairThenBackup(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeRandomTree(t, src, 3<<20, 7)
	e.mustRun("backup", src)
	dataPacks := packsOf(t, e.repo)
	// A new file changes every tree above it: the second backup stores the
	// trees again in a new pack, and the files' data stays in the first.
	if err := os.WriteFile(filepath.Join(src, "d00", "new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	for p := range dataPacks {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.run("check", "--repair"); r.code != exitCorrupt || !strings.Contains(r.stdout, "marked damaged") {
		t.Fatalf("check --repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.mustRun("backup", src)
	dst := filepath.Join(t.TempDir(), "restored")
	e.mustRun("restore", "latest", "--target", dst)
	sameDigest(t, "restored", repoTreeDigest(t, src), repoTreeDigest(t, inSnapshot(t, dst, src)))
	e.mustRun("verify", "latest", "--level", "L2")
}

// makeWALGap writes a one-space data dir, backs it up and archives its WAL,
// writes more, and drops every segment but the last three, as a database
// that deletes old segments after a checkpoint, before they were archived,
// would. It returns the data dir
// and the missing sequence range.
func (e *env) makeWALGap(seed string) (dd string, from, to uint64) {
	e.t.Helper()
	work := e.t.TempDir()
	dd = filepath.Join(work, "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "2000", "--segment-size", "64KiB", "--dim", "16", "--seed", seed)
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	archivedEnd := e.ranges("space-a").ArchivedSeq
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "3000")
	segs, err := walreplay.ListSegments(filepath.Join(dd, "spaces", "space-a", "wal"))
	if err != nil {
		e.t.Fatal(err)
	}
	keepFrom := segs[len(segs)-3]
	for _, s := range segs {
		if s.FirstSeq < keepFrom.FirstSeq {
			if s.FirstSeq > archivedEnd {
				from = archivedEnd + 1
			}
			if err := os.Remove(s.Path); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	if from == 0 {
		e.t.Fatal("no unarchived segment to drop")
	}
	return dd, from, keepFrom.FirstSeq - 1
}

// TestE2EWALGapReportedOnceThenCovered is issue 19 item 9: after entries
// were lost before they were archived, `wal archive` names the gap (space,
// segment, sequences) and archives what follows it; `wal watch` reports it
// once, not at every run; once a snapshot covers the gap, `wal archive`
// exits 0.
func TestE2EWALGapReportedOnceThenCovered(t *testing.T) {
	e := newEnv(t)
	dd, from, to := e.makeWALGap("9")
	missing := fmt.Sprintf("sequences %d..%d are missing", from, to)
	r := e.wantFail(exitCorrupt, missing, "wal", "archive", "--data-dir", dd, "--all")
	if !strings.Contains(r.stderr, "space space-a") || !strings.Contains(r.stderr, "memento backup --data-dir DIR --space space-a") {
		t.Fatalf("gap error does not name the space and the way out: %s", r.stderr)
	}
	if got, want := e.ranges("space-a").ArchivedSeq, walEnd(t, dd, "space-a"); got != want {
		t.Fatalf("archive stops at seq %d after the gap, want %d", got, want)
	}

	// wal watch: the gap once, however many runs follow (it polls every
	// 100 ms; its metrics count the runs).
	addr := freeAddr(t)
	watch, watchOut := e.start(mementoBin, "wal", "watch", "--data-dir", dd, "--all", "--interval", "100ms", "--metrics-addr", addr)
	deadline := time.Now().Add(60 * time.Second)
	for runs := 0.0; runs < 8; runs = metricValue(addr, `memento_wal_archive_runs_total{result="ok",space="space-a"}`) +
		metricValue(addr, `memento_wal_archive_runs_total{result="error",space="space-a"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("wal watch did not run 8 times\n%s", watchOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Fatalf("wal watch: %v\n%s", err, watchOut)
	}
	if n := strings.Count(watchOut.String(), "memento: error: archive run failed"); n != 1 || !strings.Contains(watchOut.String(), missing) {
		t.Fatalf("wal watch reported %d errors, want the gap once:\n%s", n, watchOut)
	}

	// A backup covers the gap: archiving exits 0 from now on.
	e.mustRun("backup", "--data-dir", dd, "--all")
	for i := 0; i < 2; i++ {
		if r := e.run("wal", "archive", "--data-dir", dd, "--all"); r.code != 0 || strings.Contains(r.stderr, "missing") {
			t.Fatalf("wal archive after a covering snapshot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	if rg := e.ranges("space-a"); len(rg.Ranges) != 2 || rg.Ranges[0].ToSeq != from-1 {
		t.Fatalf("ranges %+v, want two around the gap %d..%d", rg, from, to)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// metricValue scrapes one sample from http://addr/metrics (0 when absent
// or unreachable yet).
func metricValue(addr, sample string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// walEnd returns the last sequence of a space's newest WAL segment.
func walEnd(t *testing.T, dd, space string) uint64 {
	t.Helper()
	segs, err := walreplay.ListSegments(filepath.Join(dd, "spaces", space, "wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments of %s: %d, %v", space, len(segs), err)
	}
	last := segs[len(segs)-1]
	f, err := os.Open(last.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum, err := walreplay.VerifySegment(context.Background(), f, last.Name)
	if err != nil {
		t.Fatal(err)
	}
	return sum.LastSeq
}

// TestE2ELostArchivedWAL is issue 19 item 8: after the pack holding archived
// WAL is lost, check fails naming the space and segment, `pitr ranges` ends
// the range before the lost segment (and says why), and a restore into the
// lost stretch is refused as unrecoverable instead of failing half-way.
func TestE2ELostArchivedWAL(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "1000", "--segment-size", "64KiB", "--dim", "16", "--seed", "5")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "1000")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	kept := e.ranges("space-a")
	before := packsOf(t, e.repo)
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "1000")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	full := e.ranges("space-a")
	if full.ArchivedSeq <= kept.ArchivedSeq+1 {
		t.Fatalf("second archive run added nothing: %+v after %+v", full, kept)
	}
	for p := range packsOf(t, e.repo) {
		if !before[p] {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}

	r := e.run("check")
	if r.code != exitCorrupt || !strings.Contains(r.stdout, "space space-a WAL archive") || !strings.Contains(r.stdout, "missing from the repository") {
		t.Fatalf("check after losing archived WAL: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e.run("verify", "--space", "space-a", "--latest", "--level", "L2"); r.code != exitCorrupt ||
		!strings.Contains(r.stdout, "archived WAL segment") || !strings.Contains(r.stdout, "missing from the repository") {
		t.Fatalf("verify L2 after losing archived WAL: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The scheduled hourly L2 of the latest snapshot reads the archive after it.
	if r := e.run("verify", "--schedule"); r.code != exitCorrupt || !strings.Contains(r.stdout, "archived WAL segment") {
		t.Fatalf("verify --schedule after losing archived WAL: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	rg := e.ranges("space-a")
	if len(rg.Ranges) != 1 || rg.Ranges[0].ToSeq > kept.ArchivedSeq || rg.Ranges[0].ToSeq+1 < kept.ArchivedSeq-100 {
		t.Fatalf("ranges after losing archived WAL %+v, want one ending at or just before seq %d (was %+v)", rg, kept.ArchivedSeq, full)
	}
	if out := e.mustRun("pitr", "ranges", "--space", "space-a"); !strings.Contains(out, "the ranges end before it") {
		t.Fatalf("pitr ranges does not show the broken segment:\n%s", out)
	}
	e.wantFail(exitUnrecoverable, "after the last archived entry", "restore", "--space", "space-a",
		"--to-seq", strconv.FormatUint(full.ArchivedSeq, 10), "--target", filepath.Join(t.TempDir(), "never"))
	// What is left still restores.
	want := e.simTruthAt(dd, rg.Ranges[0].ToSeq)
	e.pitr("space-a", "--to-seq", strconv.FormatUint(rg.Ranges[0].ToSeq, 10), want)

	// check --repair rewrites the index without the lost pack: the archive
	// still names chunks in no pack, and check still says so.
	e.run("check", "--repair")
	r = e.run("check")
	if r.code != exitCorrupt || !strings.Contains(r.stdout, "space space-a WAL archive") || !strings.Contains(r.stdout, "is in no pack") {
		t.Fatalf("check after repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The data dir still holds the segments: a backup stores their chunks
	// again (same IDs), which heals the archive.
	e.mustRun("backup", "--data-dir", dd, "--all")
	if out := e.mustRun("check"); !strings.Contains(out, "check: 0 errors, 0 warnings") {
		t.Fatalf("check after a backup that stored the lost chunks again:\n%s", out)
	}
	if rg := e.ranges("space-a"); rg.ArchivedSeq != full.ArchivedSeq {
		t.Fatalf("ranges after the backup %+v, want the archive through seq %d again", rg, full.ArchivedSeq)
	}
	// L2 of the first snapshot reads the archived segments after it.
	out := e.mustRun("verify", e.snapshotIDs()[0], "--level", "L2", "--json")
	if !strings.Contains(out, `"wal_archive_segments"`) || strings.Contains(out, `"wal_archive_segments": 0`) {
		t.Fatalf("verify L2 read no archived segment:\n%s", out)
	}
}

// simTruthAt is engram-sim's state of space-a at a sequence.
func (e *env) simTruthAt(dd string, seq uint64) truthRec {
	e.t.Helper()
	return e.simTruth(dd, "space-a", "--to-seq", strconv.FormatUint(seq, 10))
}

// walRunFiles lists the repository's wal/ run files (not consolidations).
func walRunFiles(t *testing.T, repo string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	dirs, err := os.ReadDir(filepath.Join(repo, "wal"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(filepath.Join(repo, "wal", d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range ents {
			if f.Type().IsRegular() {
				out[filepath.Join(repo, "wal", d.Name(), f.Name())] = true
			}
		}
	}
	return out
}

// TestE2EDeletedWALRunFile is the rest of issue 19 item 8: a wal/ run file
// deleted by hand must not shrink the archive silently. check names the
// missing file (a middle one by its number, the newest by the audit trail).
func TestE2EDeletedWALRunFile(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "500", "--segment-size", "64KiB", "--dim", "16", "--seed", "6")
	e.mustRun("backup", "--data-dir", dd, "--all")
	var runs []string
	for i := 0; i < 3; i++ {
		e.sim("run", "--dir", dd, "--rate", "0", "--entries", "500")
		before := walRunFiles(t, e.repo)
		e.mustRun("wal", "archive", "--data-dir", dd, "--all")
		for f := range walRunFiles(t, e.repo) {
			if !before[f] {
				runs = append(runs, f)
			}
		}
		if len(runs) != i+1 {
			t.Fatalf("archive run %d wrote %d run files", i+1, len(runs)-i)
		}
	}
	e.mustRun("check")
	hide := func(f string) func() {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	back := hide(runs[1])
	if r := e.run("check"); r.code != exitCorrupt || !strings.Contains(r.stdout, "wal/ run file number 2 of 3 is missing") {
		t.Fatalf("check with the middle run file deleted: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	back()
	e.mustRun("check")
	hide(runs[2])
	if r := e.run("check"); r.code != exitCorrupt || !strings.Contains(r.stdout, "a wal/ file is missing") {
		t.Fatalf("check with the newest run file deleted: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
