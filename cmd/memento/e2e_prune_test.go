package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"memento/walreplay"
)

// pruneWorld is a repository with history: Engram space snapshots taken
// between mutations (with the WAL archived all along and compacted once), and
// plain path snapshots. want maps every snapshot ID to the digest of what it
// backed up.
type pruneWorld struct {
	e     *env
	dd    string
	truth string
	src   string
	want  map[string]map[string]string
	space map[string]string // snapshot ID -> space ("" for paths)
	// compactedTo is the last sequence of space-a's compacted run.
	compactedTo uint64
}

type backupOut struct {
	Snapshot string `json:"snapshot"`
	Space    string `json:"space"`
}

// backupAll backs up every space and records what each snapshot holds.
func (w *pruneWorld) backupAll(tags ...string) {
	w.e.t.Helper()
	args := []string{"backup", "--data-dir", w.dd, "--all", "--json"}
	for _, t := range tags {
		args = append(args, "--tag", t)
	}
	var outs []backupOut
	if err := json.Unmarshal([]byte(w.e.mustRun(args...)), &outs); err != nil {
		w.e.t.Fatal(err)
	}
	for _, o := range outs {
		w.want[o.Snapshot] = repoTreeDigest(w.e.t, filepath.Join(w.dd, "spaces", o.Space))
		w.space[o.Snapshot] = o.Space
	}
}

func (w *pruneWorld) backupPaths(tags ...string) {
	w.e.t.Helper()
	args := []string{"backup", w.src, "--json"}
	for _, t := range tags {
		args = append(args, "--tag", t)
	}
	var res []backupOut
	if err := json.Unmarshal([]byte(w.e.mustRun(args...)), &res); err != nil || len(res) != 1 {
		w.e.t.Fatalf("backup --json: %d results, %v", len(res), err)
	}
	o := res[0]
	w.want[o.Snapshot] = repoTreeDigest(w.e.t, w.src)
	w.space[o.Snapshot] = ""
}

// newPruneWorld builds the history: rounds of backup, archive, mutate; the
// WAL of space-a is compacted after round compactAfter, so the snapshots
// after it no longer hold the original segments the archive has.
func newPruneWorld(t *testing.T, rounds, compactAfter int) *pruneWorld {
	e := newEnv(t)
	work := t.TempDir()
	w := &pruneWorld{e: e, dd: filepath.Join(work, "dd"), truth: filepath.Join(work, "truth.jsonl"), src: filepath.Join(work, "src"),
		want: map[string]map[string]string{}, space: map[string]string{}}
	e.sim("generate", "--dir", w.dd, "--size", "3MB", "--spaces", "2", "--segment-size", "32KiB", "--seed", "4",
		"--truth", w.truth, "--truth-every", "40")
	for i := 1; i <= rounds; i++ {
		w.backupAll()
		e.mustRun("wal", "archive", "--data-dir", w.dd, "--all")
		e.sim("mutate", "--dir", w.dd, "--seed", strconv.Itoa(i), "--wal-share", "0.4", "--warm-share", "0.3",
			"--truth", w.truth, "--truth-every", "40")
		e.mustRun("wal", "archive", "--data-dir", w.dd, "--all")
		if i == compactAfter {
			var cr struct {
				LastSeq uint64 `json:"last_seq"`
			}
			if err := json.Unmarshal([]byte(e.mustRun("wal", "compact", "--data-dir", w.dd, "--space", "space-a", "--json")), &cr); err != nil {
				t.Fatal(err)
			}
			w.compactedTo = cr.LastSeq
			// The originals kept for the grace period would be backed up
			// with the space; as if the grace had expired, they go.
			kept, _ := filepath.Glob(filepath.Join(w.dd, "spaces", "space-a", "wal", ".archive-*"))
			for _, k := range kept {
				if err := os.RemoveAll(k); err != nil {
					t.Fatal(err)
				}
			}
			e.mustRun("wal", "archive", "--data-dir", w.dd, "--all")
		}
	}
	w.backupAll()
	e.mustRun("wal", "archive", "--data-dir", w.dd, "--all")
	// Plain path snapshots: the first tagged, then a changed tree.
	writeRandomTree(t, w.src, 3<<20, 11)
	w.backupPaths("keep-me")
	writeRandomTree(t, filepath.Join(w.src, "more"), 2<<20, 12)
	if err := os.RemoveAll(filepath.Join(w.src, "d00")); err != nil {
		t.Fatal(err)
	}
	w.backupPaths()
	w.backupPaths()
	return w
}

// restoreAll restores every snapshot still in the repository and compares
// it byte for byte (and mode, mtime) with what was backed up.
func (w *pruneWorld) restoreAll(ids []string) {
	w.e.t.Helper()
	for _, id := range ids {
		want, ok := w.want[id]
		if !ok {
			w.e.t.Fatalf("snapshot %s was never made by this test", id)
		}
		dst := filepath.Join(w.e.t.TempDir(), "r")
		w.e.mustRun("restore", id, "--target", dst)
		got := dst
		if sp := w.space[id]; sp != "" {
			got = filepath.Join(dst, "spaces", sp)
		} else {
			got = inSnapshot(w.e.t, dst, w.src)
		}
		sameDigest(w.e.t, "restore of "+id[:8], want, repoTreeDigest(w.e.t, got))
	}
}

// repoFiles lists a repository's files with their sizes (locks left out).
func repoFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "locks/") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[rel] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dirBytes(files map[string]int64, prefix string) int64 {
	var n int64
	for p, s := range files {
		if strings.HasPrefix(p, prefix) {
			n += s
		}
	}
	return n
}

type forgetOut struct {
	Groups []struct {
		Space string `json:"space"`
		Host  string `json:"host"`
		Keep  []struct {
			ID      string   `json:"id"`
			Reasons []string `json:"reasons"`
		} `json:"keep"`
		Remove []struct {
			ID string `json:"id"`
		} `json:"remove"`
	} `json:"groups"`
	Removed []string `json:"removed"`
}

type pruneOut struct {
	PacksDeleted  int   `json:"packs_deleted"`
	PacksRepacked int   `json:"packs_repacked"`
	PacksWritten  int   `json:"packs_written"`
	BytesFreed    int64 `json:"bytes_freed"`
	BytesBefore   int64 `json:"bytes_before"`
	BytesAfter    int64 `json:"bytes_after"`
	WAL           []struct {
		Space   string `json:"space"`
		Dropped int    `json:"segments_dropped"`
		Floor   uint64 `json:"floor_seq"`
	} `json:"wal"`
}

// TestE2EForgetPrune is the retention workflow end to end: a policy
// forgets old snapshots, prune frees their data and the archived WAL no
// remaining snapshot can use, and afterwards every remaining snapshot
// restores byte-exact, verify L2 and check --read-data are clean, and
// point-in-time recovery works everywhere `pitr ranges` says it does.
func TestE2EForgetPrune(t *testing.T) {
	w := newPruneWorld(t, 3, 2)
	e := w.e
	ids := e.snapshotIDs()
	if len(ids) != 4*2+3 {
		t.Fatalf("%d snapshots, want 11", len(ids))
	}
	rangesBefore := e.ranges("space-a")

	// Usage errors: no policy, no scope, both IDs and a policy.
	e.wantFail(exitUsage, "an empty policy would remove every snapshot", "forget", "--all")
	e.wantFail(exitUsage, "--space ID (repeatable) or --all", "forget", "--keep-last", "1")
	e.wantFail(exitUsage, "not both", "forget", ids[0], "--keep-last", "1")
	e.wantFail(exitUsage, "keep-within", "forget", "--all", "--keep-within", "3x")
	e.wantFail(exitNotFound, "space nosuch", "forget", "--space", "nosuch", "--keep-last", "1")
	// A policy keeping nothing of a group is refused: every path snapshot
	// was taken within the same second, so keep-within cannot drop all, but
	// a tag nobody has keeps nothing.
	e.wantFail(exitUsage, "refusing to remove every snapshot of space space-a", "forget", "--space", "space-a", "--keep-tag", "nobody")

	// Dry runs change nothing.
	before := repoFiles(t, e.repo)
	var dry forgetOut
	if err := json.Unmarshal([]byte(e.mustRun("forget", "--all", "--keep-last", "2", "--keep-tag", "keep-me", "--dry-run", "--json")), &dry); err != nil {
		t.Fatal(err)
	}
	if out := e.mustRun("prune", "--dry-run"); !strings.Contains(out, "nothing was changed") {
		t.Fatalf("prune --dry-run: %s", out)
	}
	if after := repoFiles(t, e.repo); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a dry run changed the repository:\nbefore %v\nafter  %v", before, after)
	}

	var fo forgetOut
	if err := json.Unmarshal([]byte(e.mustRun("forget", "--all", "--keep-last", "2", "--keep-tag", "keep-me", "--json")), &fo); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fo.Groups) != fmt.Sprint(dry.Groups) {
		t.Fatalf("forget decided differently from its dry run:\n%v\n%v", fo.Groups, dry.Groups)
	}
	if len(fo.Groups) != 3 || len(fo.Removed) != 4 {
		t.Fatalf("forget: %d groups, removed %v", len(fo.Groups), fo.Removed)
	}
	for _, g := range fo.Groups {
		switch g.Space {
		case "space-a", "space-b":
			if len(g.Keep) != 2 || len(g.Remove) != 2 || strings.Join(g.Keep[0].Reasons, ",") != "last" {
				t.Fatalf("group %s: %+v", g.Space, g)
			}
		case "":
			// three path snapshots: the two newest by keep-last, the
			// oldest by its tag
			if len(g.Keep) != 3 || len(g.Remove) != 0 || strings.Join(g.Keep[2].Reasons, ",") != "tag keep-me" {
				t.Fatalf("paths group: %+v", g)
			}
		}
	}
	remaining := e.snapshotIDs()
	if len(remaining) != 7 {
		t.Fatalf("%d snapshots after forget, want 7", len(remaining))
	}
	// Forgetting only removes manifests: no data went yet, and check
	// knows the snapshots were forgotten.
	if got := dirBytes(repoFiles(t, e.repo), "data/"); got != dirBytes(before, "data/") {
		t.Fatalf("forget changed data/: %d -> %d bytes", dirBytes(before, "data/"), got)
	}
	e.mustRun("check")

	var po pruneOut
	if err := json.Unmarshal([]byte(e.mustRun("prune", "--json")), &po); err != nil {
		t.Fatal(err)
	}
	after := repoFiles(t, e.repo)
	t.Logf("prune: %+v; data/ %d -> %d bytes", po, dirBytes(before, "data/"), dirBytes(after, "data/"))
	if po.BytesFreed <= 0 || po.PacksDeleted+po.PacksRepacked == 0 || dirBytes(after, "data/") >= dirBytes(before, "data/") ||
		po.BytesBefore-po.BytesAfter != po.BytesFreed || dirBytes(after, "data/") != po.BytesAfter {
		t.Fatalf("prune freed nothing or misreports: %+v, data/ %d -> %d", po, dirBytes(before, "data/"), dirBytes(after, "data/"))
	}
	dropped := 0
	for _, wr := range po.WAL {
		if wr.Space == "space-a" {
			dropped = wr.Dropped
		}
	}
	if dropped == 0 {
		t.Fatalf("prune kept every archived WAL segment of space-a although the remaining snapshots hold its compacted WAL: %+v", po.WAL)
	}

	w.restoreAll(remaining)
	if out := e.mustRun("verify", "--all", "--level", "L2"); strings.Count(out, "L2 PASSED") != 7 {
		t.Fatalf("verify L2 after prune:\n%s", out)
	}
	if out := e.mustRun("check", "--read-data"); !strings.Contains(out, "check: 0 errors, 0 warnings") {
		t.Fatalf("check --read-data after prune:\n%s", out)
	}
	// A second prune finds nothing left to do.
	var again pruneOut
	if err := json.Unmarshal([]byte(e.mustRun("prune", "--json")), &again); err != nil {
		t.Fatal(err)
	}
	if again.PacksDeleted+again.PacksRepacked != 0 || again.BytesFreed != 0 {
		t.Fatalf("second prune still changed something: %+v", again)
	}

	// PITR: the range now starts at the oldest remaining snapshot's
	// checkpoint and still ends at the last archived entry; restores inside
	// it match the ground truth, a point that was only reachable through the
	// forgotten snapshots is refused.
	rangesAfter := e.ranges("space-a")
	if len(rangesAfter.Ranges) == 0 || rangesAfter.Ranges[len(rangesAfter.Ranges)-1].ToSeq != rangesBefore.Ranges[len(rangesBefore.Ranges)-1].ToSeq ||
		rangesAfter.Ranges[0].FromSeq <= rangesBefore.Ranges[0].FromSeq || rangesAfter.ArchivedSeq != rangesBefore.ArchivedSeq {
		t.Fatalf("ranges before %+v, after %+v", rangesBefore, rangesAfter)
	}
	lo, hi := rangesAfter.Ranges[0].FromSeq, rangesAfter.Ranges[len(rangesAfter.Ranges)-1].ToSeq
	var inside, gone []truthRec
	for _, l := range readTruth(t, w.truth) {
		switch {
		case l.Space != "space-a":
		case l.Sequence >= lo && l.Sequence <= hi && l.Sequence > w.compactedTo:
			// The compacted run's originals were pruned, so the range
			// starts after the run (docs/pitr.md); the guard keeps the
			// sample honest should the range ever start earlier.
			inside = append(inside, l)
		case l.Sequence >= rangesBefore.Ranges[0].FromSeq && l.Sequence < lo:
			gone = append(gone, l)
		}
	}
	if len(inside) < 3 || len(gone) == 0 {
		t.Fatalf("truth lines: %d inside %d..%d, %d only before it", len(inside), lo, hi, len(gone))
	}
	for _, c := range []truthRec{inside[0], inside[len(inside)/2], inside[len(inside)-1]} {
		e.pitr("space-a", "--to-seq", strconv.FormatUint(c.Sequence, 10), c)
		e.pitr("space-a", "--at", strconv.FormatInt(c.TimestampNS, 10), c)
	}
	e.wantFail(exitUnrecoverable, "it is before the first backup", "restore", "--space", "space-a", "--to-seq",
		strconv.FormatUint(gone[len(gone)-1].Sequence, 10), "--target", filepath.Join(t.TempDir(), "never"))

	// Archiving goes on where it was: only the new entries are shipped.
	walBytes := func() int64 {
		segs, err := walreplay.ListSegments(filepath.Join(w.dd, "spaces", "space-a", "wal"))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, s := range segs {
			n += s.Size
		}
		return n
	}
	walBefore := walBytes()
	e.sim("mutate", "--dir", w.dd, "--seed", "9", "--wal-share", "0.1", "--warm-share", "0")
	appended := walBytes() - walBefore
	var ship []struct {
		Space    string `json:"space"`
		NewBytes int64  `json:"new_bytes"`
		LastSeq  uint64 `json:"last_seq"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("wal", "archive", "--data-dir", w.dd, "--all", "--json")), &ship); err != nil {
		t.Fatal(err)
	}
	end := e.simTruth(w.dd, "space-a")
	for _, s := range ship {
		if s.Space == "space-a" && (s.LastSeq != end.Sequence || s.NewBytes != appended) {
			t.Fatalf("archive after prune: %+v, want the %d new bytes through seq %d only", s, appended, end.Sequence)
		}
	}
	e.pitr("space-a", "--to-seq", strconv.FormatUint(end.Sequence, 10), end)

	// The audit trail has the forgets and the prune.
	if out := e.mustRun("log", "--command", "forget"); strings.Count(out, " forget ") != 4 {
		t.Fatalf("forget records:\n%s", out)
	}
	if out := e.mustRun("log", "--command", "prune"); strings.Count(out, " prune ") != 2 {
		t.Fatalf("prune records:\n%s", out)
	}
}

// TestE2EPruneRefusesWhileLocked: prune needs the repository to itself. A
// running `wal watch` holds a shared lock; prune names it and how to clear
// a stale one. Once the watcher is gone (killed: its lock stays, stale),
// prune runs.
func TestE2EPruneRefusesWhileLocked(t *testing.T) {
	e := newEnv(t)
	dd := e.simData("5")
	e.mustRun("backup", "--data-dir", dd, "--all")
	watch, out := e.start(mementoBin, "wal", "watch", "--data-dir", dd, "--all", "--interval", "200ms")
	deadline := time.Now().Add(20 * time.Second)
	for countFiles(t, filepath.Join(e.repo, "locks")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("wal watch took no lock: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	host, _ := os.Hostname()
	r := e.wantFail(exitLocked, fmt.Sprintf("shared lock of 'wal watch' by %s pid %d, taken ", host, watch.Process.Pid), "prune")
	if !strings.Contains(r.stderr, "run 'memento unlock'") {
		t.Fatalf("no hint how to clear a stale lock: %s", r.stderr)
	}
	// A dry run only looks and works beside the watcher.
	e.mustRun("prune", "--dry-run")
	_ = watch.Process.Signal(syscall.SIGKILL)
	_ = watch.Wait()
	if countFiles(t, filepath.Join(e.repo, "locks")) == 0 {
		t.Fatal("the killed watcher's lock is gone; the test needs it to stay")
	}
	e.mustRun("prune")
	e.mustRun("unlock")
	if n := countFiles(t, filepath.Join(e.repo, "locks")); n != 0 {
		t.Fatalf("%d locks left after unlock", n)
	}
}

// TestE2EPruneKilled kills prune (SIGKILL, through its test hook) after
// each of its changes to the repository in turn. After every kill, every
// remaining snapshot still restores byte-exact; the next prune completes,
// and then check --read-data finds no error and no unindexed pack.
func TestE2EPruneKilled(t *testing.T) {
	w := newPruneWorld(t, 2, 1)
	e := w.e
	e.mustRun("forget", "--all", "--keep-last", "1")
	remaining := e.snapshotIDs()
	saved := t.TempDir()
	copyTreeModes(t, e.repo, filepath.Join(saved, "repo"))
	copyTreeModes(t, e.cache, filepath.Join(saved, "cache"))
	reset := func() {
		for _, d := range []string{e.repo, e.cache} {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
		}
		copyTreeModes(t, filepath.Join(saved, "repo"), e.repo)
		copyTreeModes(t, filepath.Join(saved, "cache"), e.cache)
	}
	// A complete prune first, to know the final state.
	var full pruneOut
	if err := json.Unmarshal([]byte(e.mustRun("prune", "--json")), &full); err != nil {
		t.Fatal(err)
	}
	if full.PacksDeleted+full.PacksRepacked == 0 {
		t.Fatalf("the prune has nothing to do: %+v", full)
	}
	finalData := dirBytes(repoFiles(t, e.repo), "data/")
	extra := e.extra
	killed := 0
	stride := 1
	if testing.Short() {
		stride = 3
	}
	for n := 1; ; n += stride {
		reset()
		e.extra = append(extra, "MEMENTO_TEST_PRUNE_KILL_AFTER="+strconv.Itoa(n))
		r := e.run("prune")
		e.extra = extra
		if r.code == 0 {
			break // fewer than n steps: the prune completed
		}
		if r.code != -1 || !strings.Contains(r.stderr, "test hook: killed after step") {
			t.Fatalf("prune with kill after %d: exit %d: %s", n, r.code, r.stderr)
		}
		killed++
		step := r.stderr[strings.Index(r.stderr, "killed after step"):]
		// Every remaining snapshot restores right after the kill.
		w.restoreAll(remaining)
		e.mustRun("prune")
		out := e.mustRun("check", "--read-data")
		if !strings.Contains(out, "check: 0 errors") || strings.Contains(out, "not listed in any index file") {
			t.Fatalf("after a prune killed at %s and a second prune, check says:\n%s", step, out)
		}
		if got := dirBytes(repoFiles(t, e.repo), "data/"); got > finalData+finalData/10 {
			t.Fatalf("after a prune killed at %s and a second prune, data/ holds %d bytes, an uninterrupted prune left %d", step, got, finalData)
		}
	}
	if killed*stride < 10 {
		t.Fatalf("prune was killed at only %d points", killed)
	}
	t.Logf("prune killed at each of its %d steps; the repository stayed valid every time", killed)
	w.restoreAll(remaining)
}

// copyTreeModes copies a directory tree keeping permissions.
func copyTreeModes(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(dst, fi.Mode().Perm()|0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
