package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"memento/repo/repotest"
)

// The kill chaos test runs every command that writes (to the repository, a
// replica, the cache or a restore target) and kills it with SIGKILL at a
// point chosen by a seeded RNG: after a number of progress steps (a file that
// appears or goes, or changes size, below the places the command writes to)
// drawn as a fraction of the steps an uninterrupted run of the same command
// makes. No assertion depends on timing: wherever the kill lands, what must
// hold is the same.
//
// After each kill: no snapshot is listed that was not completely backed up,
// every listed snapshot (primary and replica) restores byte-exactly to what
// was backed up, `check` passes, a restore target holds its old content, or
// the new complete content with the old kept aside, or is moved aside with
// the old content whole (the instant between the two renames); leftover
// staging dirs are counted. Then the same command runs again and must
// succeed (after `memento unlock` if it reports a lock, as the documented
// runbook says), and its result must be the one of an uninterrupted run.

// chaosKillSeed is the seed of kill trial 0; trial i has seed
// chaosKillSeed+i, which decides its command (seed modulo the number of
// commands) and its kill point.
const chaosKillSeed = 20261205000

// killWorld is the data every trial starts from: a repository with Engram
// space snapshots, archived WAL and path snapshots, its cache, a replica, the
// Engram data dir and source tree with changes not yet backed up, and two
// restore targets with old content. pristine is kept; live is where a trial
// runs (always the same absolute paths).
type killWorld struct {
	t              *testing.T
	pristine, live string
	scratch        string
	password       string
	want           map[string]map[string]string // snapshot ID -> digest of what it backed up
	space          map[string]string            // snapshot ID -> space ("" for paths)
	spaces         []string
	atTime         string // the instant `restore --space --at` recovers (archived)
	restoreID      string // the path snapshot restored over old content
	forgetID       string // the path snapshot forgotten before `prune`
}

func (w *killWorld) path(rel ...string) string {
	return filepath.Join(append([]string{w.live}, rel...)...)
}

func (w *killWorld) env() *env {
	return &env{t: w.t, repo: w.path("repo"), cache: w.path("cache"), password: w.password}
}

func (w *killWorld) replicaEnv() *env {
	return &env{t: w.t, repo: w.path("replica"), cache: w.path("replica-cache"), password: w.password}
}

// writeChaosTree writes n files of random sizes (1 KiB to 257 KiB) in a few
// directories.
func writeChaosTree(t *testing.T, dir string, n int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%03d-%d", i, seed))
		b := make([]byte, 1<<10+rng.IntN(256<<10))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newKillWorld(t *testing.T) *killWorld {
	base := t.TempDir()
	w := &killWorld{t: t, pristine: filepath.Join(base, "pristine"), live: filepath.Join(base, "live"),
		scratch: filepath.Join(base, "scratch"), password: "correct horse",
		want: map[string]map[string]string{}, space: map[string]string{}, spaces: []string{"space-a", "space-b"}}
	e := w.env()
	e.mustRun("init")
	dd := w.path("dd")
	e.sim("generate", "--dir", dd, "--size", "6MB", "--spaces", "2", "--segment-size", "128KiB", "--seed", "7")
	w.backup(e, "backup", "--data-dir", dd, "--all", "--json")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	copyTreeModes(t, dd, w.path("dd2")) // the data dir `restore --space --at` replaces a space of
	e.sim("mutate", "--dir", dd, "--seed", "1", "--wal-share", "0.3", "--warm-share", "0.2")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	w.atTime = strconv.FormatInt(e.simTruth(dd, "space-a").TimestampNS, 10)
	e.mustRun("replicate", "--to", w.path("replica"))

	src := w.path("src")
	writeChaosTree(t, src, 40, 1)
	w.forgetID = w.backup(e, "backup", src, "--json")[0]
	writeChaosTree(t, filepath.Join(src, "more"), 20, 2)
	if err := os.RemoveAll(filepath.Join(src, "d0")); err != nil {
		t.Fatal(err)
	}
	w.restoreID = w.backup(e, "backup", src, "--json")[0]
	writeChaosTree(t, w.path("rt", "tgt"), 12, 3) // old content a restore replaces

	// What the next backup and `wal archive` find new.
	e.sim("mutate", "--dir", dd, "--seed", "2", "--wal-share", "0.3", "--warm-share", "0.2")
	writeChaosTree(t, filepath.Join(src, "newer"), 15, 4)
	if out := e.mustRun("unlock"); !strings.Contains(out, "removed 0 locks") {
		t.Fatalf("locks left while building the world: %s", out)
	}
	copyTreeModes(t, w.live, w.pristine)
	return w
}

// backup runs a backup (with --json) and records what each snapshot holds.
func (w *killWorld) backup(e *env, args ...string) []string {
	w.t.Helper()
	want := w.sourceDigests()
	var outs []backupOut
	if err := json.Unmarshal([]byte(e.mustRun(args...)), &outs); err != nil {
		w.t.Fatal(err)
	}
	var ids []string
	for _, o := range outs {
		w.want[o.Snapshot], w.space[o.Snapshot] = want[o.Space], o.Space
		ids = append(ids, o.Snapshot)
	}
	return ids
}

// sourceDigests describes what a backup would store now: each space of the
// data dir, and the source tree (key "").
func (w *killWorld) sourceDigests() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, sp := range w.spaces {
		out[sp] = repoTreeDigest(w.t, w.path("dd", "spaces", sp))
	}
	if _, err := os.Stat(w.path("src")); err == nil {
		out[""] = repoTreeDigest(w.t, w.path("src"))
	}
	return out
}

// reset makes live a fresh copy of pristine.
func (w *killWorld) reset() {
	w.t.Helper()
	for _, d := range []string{w.live, w.scratch} {
		if err := os.RemoveAll(d); err != nil {
			w.t.Fatal(err)
		}
	}
	copyTreeModes(w.t, w.pristine, w.live)
}

// contentDigest is repoTreeDigest without modification times (a restore
// target's files are compared by content: a point-in-time recovery writes
// files of its own), nil when root does not exist.
func contentDigest(t *testing.T, root string) map[string]string {
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	d := repoTreeDigest(t, root)
	for p, desc := range d {
		if f := strings.Fields(desc); len(f) == 4 && !strings.HasPrefix(desc, "symlink ") {
			d[p] = f[0] + " " + f[2] + " " + f[3]
		}
	}
	return d
}

// progress counts steps below roots: a file or directory that appears or
// goes, or a file whose size changed, since the previous poll. Entries are
// known by their inode, so that renaming a directory (a restore's staging dir
// into place, the old target aside) is no step at all, not one per file
// below it: kill points spread over the writing.
type progress struct {
	roots []string
	last  map[uint64]int64
	steps int
}

func (p *progress) poll() {
	cur := map[uint64]int64{}
	for _, root := range p.roots {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // vanished under us
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			size := int64(-1)
			if fi.Mode().IsRegular() {
				size = fi.Size()
			}
			cur[st.Ino] = size
			return nil
		})
	}
	if p.last != nil {
		for k, v := range cur {
			if old, ok := p.last[k]; !ok || old != v {
				p.steps++
			}
		}
		for k := range p.last {
			if _, ok := cur[k]; !ok {
				p.steps++
			}
		}
	}
	p.last = cur
}

// runKilled runs memento with args and kills it with SIGKILL once the
// progress below roots reached at steps (at 0: at once; at < 0: never). It
// returns whether the kill happened before the command ended, the steps seen
// and, for a command that ended by itself, its result.
func runKilled(e *env, roots []string, at int, args ...string) (killed bool, steps int, r result) {
	e.t.Helper()
	p := &progress{roots: roots}
	p.poll()
	cmd := exec.Command(mementoBin, args...)
	cmd.Env = e.environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Minute)
	var err error
wait:
	for {
		if at >= 0 && p.steps >= at {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			err = <-exited
			break
		}
		select {
		case err = <-exited:
			break wait
		case <-time.After(time.Millisecond):
		}
		p.poll()
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			e.t.Fatalf("memento %s ran for 10 minutes", strings.Join(args, " "))
		}
	}
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true, p.steps, result{}
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return false, p.steps, result{out.String(), errb.String(), code}
}

// killScenario is one command that writes, and what to compare.
type killScenario struct {
	name     string
	args     func(w *killWorld) []string
	watch    func(w *killWorld) []string // where it writes
	setup    func(w *killWorld, e *env)  // after the reset, before the command (not killed)
	target   string                      // restore: the directory it replaces, under live
	backup   []string                    // it adds snapshots of these spaces ("" for the source tree)
	replica  bool                        // it writes the replica
	reverify bool                        // its next run may touch stored data: restore every snapshot again after it
	ranges   bool                        // it changes the archived WAL: compare pitr ranges with an uninterrupted run
	// dirty: the setup damages the repository, so right after the kill
	// `check` may fail and a restore may be refused (never give wrong
	// data); after the next run both must pass.
	dirty bool
}

// killScenarios are the commands, in the order trials take them (the first
// ones are the smoke test of make test).
func killScenarios() []*killScenario {
	repoDir := func(w *killWorld) []string { return []string{w.path("repo")} }
	return []*killScenario{
		{name: "backup --data-dir --all", backup: []string{"space-a", "space-b"}, watch: repoDir,
			args: func(w *killWorld) []string { return []string{"backup", "--data-dir", w.path("dd"), "--all"} }},
		{name: "restore --space --at", target: "dd2/spaces/space-a",
			watch: func(w *killWorld) []string { return []string{w.path("dd2", "spaces")} },
			args: func(w *killWorld) []string {
				return []string{"restore", "--space", "space-a", "--at", w.atTime, "--target", w.path("dd2")}
			}},
		{name: "prune", watch: repoDir, reverify: true, ranges: true,
			setup: func(w *killWorld, e *env) { e.mustRun("forget", w.forgetID) },
			args:  func(w *killWorld) []string { return []string{"prune"} }},
		{name: "backup PATH", backup: []string{""}, watch: repoDir,
			args: func(w *killWorld) []string { return []string{"backup", w.path("src")} }},
		{name: "restore SNAPSHOT", target: "rt/tgt",
			watch: func(w *killWorld) []string { return []string{w.path("rt")} },
			args:  func(w *killWorld) []string { return []string{"restore", w.restoreID, "--target", w.path("rt", "tgt")} }},
		{name: "replicate --to", replica: true, // the replica lacks the path snapshots
			watch: func(w *killWorld) []string { return []string{w.path("replica")} },
			args:  func(w *killWorld) []string { return []string{"replicate", "--to", w.path("replica")} }},
		{name: "wal archive --all", watch: repoDir, ranges: true,
			args: func(w *killWorld) []string { return []string{"wal", "archive", "--data-dir", w.path("dd"), "--all"} }},
		{name: "forget --prune", watch: repoDir, reverify: true, ranges: true,
			args: func(w *killWorld) []string { return []string{"forget", "--all", "--keep-last", "1", "--prune"} }},
		{name: "check --repair", watch: repoDir, reverify: true, dirty: true, ranges: true,
			setup: func(w *killWorld, e *env) {
				ixs, _ := filepath.Glob(w.path("repo", "index", "*"))
				if len(ixs) < 2 {
					w.t.Fatalf("%d index files", len(ixs))
				}
				slices.Sort(ixs)
				if err := os.Remove(ixs[0]); err != nil { // a lost index file: what repair is for
					w.t.Fatal(err)
				}
			},
			args: func(w *killWorld) []string { return []string{"check", "--repair"} }},
		{name: "index rebuild", reverify: true, ranges: true,
			setup: func(w *killWorld, e *env) {
				if err := os.RemoveAll(w.path("cache")); err != nil {
					w.t.Fatal(err)
				}
			},
			watch: func(w *killWorld) []string { return []string{w.path("cache")} },
			args:  func(w *killWorld) []string { return []string{"index", "rebuild"} }},
	}
}

// killRef is what an uninterrupted run of a scenario leaves.
type killRef struct {
	steps   int
	target  map[string]string // content of the restore target
	ids     []string          // snapshots listed (sorted) unless the scenario backs up
	ranges  map[string]string // pitr ranges --json per space
	replica []string          // snapshots on the replica
}

type listedSnapshot struct {
	ID    string `json:"id"`
	Space string `json:"space"`
}

func (w *killWorld) listSnapshots(e *env) ([]listedSnapshot, error) {
	r := e.run("snapshots", "--json")
	if r.code != 0 {
		return nil, fmt.Errorf("snapshots: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}
	var sns []listedSnapshot
	if err := json.Unmarshal([]byte(r.stdout), &sns); err != nil {
		return nil, fmt.Errorf("snapshots --json: %v", err)
	}
	return sns, nil
}

func snapIDs(sns []listedSnapshot) []string {
	ids := make([]string, len(sns))
	for i, s := range sns {
		ids[i] = s.ID
	}
	slices.Sort(ids)
	return ids
}

func (w *killWorld) pitrRanges(e *env) map[string]string {
	out := map[string]string{}
	for _, sp := range w.spaces {
		r := e.run("pitr", "ranges", "--space", sp, "--json")
		out[sp] = fmt.Sprintf("exit %d: %s", r.code, strings.TrimSpace(r.stdout))
	}
	return out
}

// prepare resets the world and runs the scenario's setup; it returns the
// digests a new snapshot must restore to (per space, "" for the source
// tree) and the restore target's old content.
func (w *killWorld) prepare(sc *killScenario) (e *env, fresh map[string]map[string]string, old map[string]string) {
	w.t.Helper()
	w.reset()
	e = w.env()
	if sc.setup != nil {
		sc.setup(w, e)
	}
	if sc.backup != nil {
		fresh = w.sourceDigests()
	}
	if sc.target != "" {
		old = contentDigest(w.t, w.path(sc.target))
	}
	return e, fresh, old
}

func (w *killWorld) reference(sc *killScenario) *killRef {
	w.t.Helper()
	e, _, _ := w.prepare(sc)
	_, steps, r := runKilled(e, sc.watch(w), -1, sc.args(w)...)
	if r.code != 0 {
		w.t.Fatalf("%s: uninterrupted run: exit %d: %s", sc.name, r.code, r.stderr)
	}
	ref := &killRef{steps: steps, ranges: w.pitrRanges(e)}
	if sc.target != "" {
		ref.target = contentDigest(w.t, w.path(sc.target))
	}
	sns, err := w.listSnapshots(e)
	if err != nil {
		w.t.Fatal(err)
	}
	ref.ids = snapIDs(sns)
	if sc.replica {
		rs, err := w.listSnapshots(w.replicaEnv())
		if err != nil {
			w.t.Fatal(err)
		}
		ref.replica = snapIDs(rs)
	}
	return ref
}

// killTally counts one command's trials.
type killTally struct {
	kills, completed, clean, unlocked, verified int
	old, new, aside                             int
	staging, stagingAfter, failures             int
	refused                                     int
}

// trialState collects one trial's findings.
type trialState struct {
	w        *killWorld
	sc       *killScenario
	tally    *killTally
	fresh    map[string]map[string]string
	verified map[string]bool
	problems []string
	// mayRefuse: a restore may fail (never give wrong data): the
	// repository is damaged until the command's next run repairs it.
	mayRefuse bool
}

func (s *trialState) fail(format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

// verifySnapshots restores every snapshot e lists (again only if all) and
// compares it with what was backed up. It returns the snapshots listed.
func (s *trialState) verifySnapshots(e *env, when string, all bool) []listedSnapshot {
	w := s.w
	sns, err := w.listSnapshots(e)
	if err != nil {
		s.fail("%s: %v", when, err)
		return nil
	}
	for _, sn := range sns {
		if s.verified[e.repo+sn.ID] && !all {
			continue
		}
		want, ok := w.want[sn.ID]
		if !ok && s.fresh != nil {
			want, ok = s.fresh[sn.Space]
		}
		if !ok {
			s.fail("%s: snapshot %s (%q) is listed but was never completely backed up", when, sn.ID[:8], sn.Space)
			continue
		}
		dst := filepath.Join(w.scratch, "verify")
		if err := os.RemoveAll(dst); err != nil {
			w.t.Fatal(err)
		}
		r := e.run("restore", sn.ID, "--target", dst)
		if r.code != 0 && s.mayRefuse {
			s.tally.refused++
			continue
		}
		if r.code != 0 {
			s.fail("%s: restore of snapshot %s: exit %d: %s", when, sn.ID[:8], r.code, strings.TrimSpace(r.stderr))
			continue
		}
		got := inSnapshot(w.t, dst, w.path("src"))
		if sn.Space != "" {
			got = filepath.Join(dst, "spaces", sn.Space)
		}
		if d := digestDiffs(want, repoTreeDigest(w.t, got)); len(d) > 0 {
			s.fail("%s: WRONG DATA: snapshot %s restores with %d differences, first: %s", when, sn.ID[:8], len(d), d[0])
			continue
		}
		s.verified[e.repo+sn.ID] = true
		s.tally.verified++
	}
	return sns
}

func (s *trialState) check(e *env, when string) {
	r := e.run("check")
	if r.code != 0 || !strings.Contains(r.stdout, "check: 0 errors") {
		s.fail("%s: check of %s: exit %d: %s", when, filepath.Base(e.repo), r.code, strings.TrimSpace(r.stdout+r.stderr))
	}
}

// staging counts the hidden staging dirs restores leave beside a target.
func (s *trialState) staging() int {
	if s.sc.target == "" {
		return 0
	}
	parent, base := filepath.Split(s.w.path(s.sc.target))
	n := 0
	for _, pat := range []string{"." + base + ".restore-*", "." + base + ".pitr-*"} {
		m, _ := filepath.Glob(filepath.Join(parent, pat))
		n += len(m)
	}
	return n
}

// target classifies the restore target: "old", "new" or "aside", or
// reports the problem. The old content must always be somewhere whole.
func (s *trialState) target(when string, old, new map[string]string, final bool) string {
	p := s.w.path(s.sc.target)
	cur := contentDigest(s.w.t, p)
	asides, _ := filepath.Glob(p + ".pre-restore-*")
	oldAside := false
	for _, a := range asides {
		if len(digestDiffs(old, contentDigest(s.w.t, a))) == 0 {
			oldAside = true
		}
	}
	switch {
	case !final && cur != nil && len(digestDiffs(old, cur)) == 0:
		return "old"
	case cur != nil && len(digestDiffs(new, cur)) == 0:
		if !oldAside && len(old) > 0 {
			s.fail("%s: DATA LOST: the target holds the new content and no %s.pre-restore-* holds the old", when, filepath.Base(p))
		}
		return "new"
	case !final && cur == nil && oldAside:
		return "aside"
	}
	d := digestDiffs(new, cur)
	first := ""
	if len(d) > 0 {
		first = d[0]
	}
	s.fail("%s: the target holds neither the old nor the new content (%d entries, old kept aside: %v; vs new: %d differences, first: %s)",
		when, len(cur), oldAside, len(d), first)
	return ""
}

// trial runs one kill trial; it returns false when the command completed
// before the kill point (nothing to judge).
func (w *killWorld) trial(sc *killScenario, ref *killRef, at int, tally *killTally) (killed bool, problems []string) {
	w.t.Helper()
	e, fresh, old := w.prepare(sc)
	s := &trialState{w: w, sc: sc, tally: tally, fresh: fresh, verified: map[string]bool{}}
	killed, _, r := runKilled(e, sc.watch(w), at, sc.args(w)...)
	if !killed {
		tally.completed++
		if r.code != 0 {
			return false, []string{fmt.Sprintf("ran to completion with exit %d: %s", r.code, r.stderr)}
		}
		return false, nil
	}
	tally.kills++

	// Right after the kill.
	const after = "after the kill"
	if n := s.staging(); n > 0 {
		tally.staging++
	}
	if sc.target != "" {
		switch s.target(after, old, ref.target, false) {
		case "old":
			tally.old++
		case "new":
			tally.new++
		case "aside":
			tally.aside++
		}
	}
	s.mayRefuse = sc.dirty
	s.verifySnapshots(e, after, false)
	s.mayRefuse = false
	if !sc.dirty {
		s.check(e, after)
	}
	if sc.replica {
		s.verifySnapshots(w.replicaEnv(), after+" (replica)", false)
		s.check(w.replicaEnv(), after+" (replica)")
	}

	// The next run of the same command.
	const next = "after the next run"
	r = e.run(sc.args(w)...)
	if r.code == exitLocked {
		tally.unlocked++
		e.mustRun("unlock")
		r = e.run(sc.args(w)...)
	} else if r.code == 0 {
		tally.clean++
	}
	if r.code != 0 {
		s.fail("the next run failed: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
		return true, s.problems
	}
	if sc.target != "" {
		s.target(next, old, ref.target, true)
		if s.staging() > 0 {
			tally.stagingAfter++
			s.fail("%s: the killed restore's hidden staging dir is still beside the target after the next run", next)
		}
	}
	sns := s.verifySnapshots(e, next, sc.reverify)
	if ids := snapIDs(sns); sc.backup == nil && !slices.Equal(ids, ref.ids) {
		s.fail("%s: snapshots %v, an uninterrupted run leaves %v", next, short(ids), short(ref.ids))
	}
	for _, k := range sc.backup {
		if !slices.ContainsFunc(sns, func(sn listedSnapshot) bool { return w.want[sn.ID] == nil && sn.Space == k }) {
			s.fail("%s: no new snapshot of %q", next, k)
		}
	}
	s.check(e, next)
	if sc.ranges {
		for sp, got := range w.pitrRanges(e) {
			if want := ref.ranges[sp]; got != want {
				s.fail("%s: pitr ranges of %s:\n%s\nan uninterrupted run leaves:\n%s", next, sp, got, want)
			}
		}
	}
	if sc.replica {
		rids := snapIDs(s.verifySnapshots(w.replicaEnv(), next+" (replica)", false))
		if !slices.Equal(rids, ref.replica) {
			s.fail("%s: the replica lists %v, an uninterrupted run leaves %v", next, short(rids), short(ref.replica))
		}
		s.check(w.replicaEnv(), next+" (replica)")
	}
	return true, s.problems
}

func short(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(8, len(id))]
	}
	return out
}

// killReport is the markdown report of the trials so far.
func killReport(scs []*killScenario, tallies map[*killScenario]*killTally, failures []string, first, last uint64) string {
	var b strings.Builder
	var sum killTally
	commands := 0
	for _, sc := range scs {
		if tl := tallies[sc]; tl != nil && tl.kills > 0 {
			sum.kills += tl.kills
			sum.verified += tl.verified
			commands++
		}
	}
	fmt.Fprintf(&b, "kill -9 chaos: %d kills over %d commands (seeds %d-%d), %d snapshot restores byte-exact, %d failures\n\n",
		sum.kills, commands, first, last, sum.verified, len(failures))
	b.WriteString("| command | kills | ran to completion first | clean next runs | next run after unlock | snapshots verified | target old / new / moved aside | staging dirs left (after kill / after next run) | failed trials |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, sc := range scs {
		tl := tallies[sc]
		if tl == nil {
			continue
		}
		tgt := "-"
		if sc.target != "" {
			tgt = fmt.Sprintf("%d / %d / %d", tl.old, tl.new, tl.aside)
		}
		stg := "-"
		if sc.target != "" {
			stg = fmt.Sprintf("%d / %d", tl.staging, tl.stagingAfter)
		}
		ver := fmt.Sprint(tl.verified)
		if tl.refused > 0 {
			ver += fmt.Sprintf(" (%d refused before the repair)", tl.refused)
		}
		fmt.Fprintf(&b, "| `%s` | %d | %d | %d | %d | %s | %s | %s | %d |\n",
			sc.name, tl.kills, tl.completed, tl.clean, tl.unlocked, ver, tgt, stg, tl.failures)
	}
	// A blank line ends the table: a line right below it would be a row.
	if len(failures) > 0 {
		b.WriteString("\n")
	}
	for _, f := range failures {
		fmt.Fprintf(&b, "- failure: %s\n", f)
	}
	return b.String()
}

// TestChaosKill kills the commands that write at MEMENTO_CHAOS_KILLS points
// (default 2, 1 with -short; make chaos runs 100), spread round-robin over
// the commands. MEMENTO_CHAOS_SEED=S replays the trial of seed S (the same
// command and progress fraction; the exact instruction the kill lands on
// depends on scheduling), with MEMENTO_CHAOS_KILLS=K the K trials from S.
// MEMENTO_CHAOS_KILL_REPORT=FILE
// writes the markdown table.
func TestChaosKill(t *testing.T) {
	scs := killScenarios()
	def := 2
	if testing.Short() {
		def = 1
	}
	first, kills := repotest.Trials(t, chaosKillSeed, "MEMENTO_CHAOS_KILLS", def)
	t.Logf("kill chaos: %d kills from seed %d (MEMENTO_CHAOS_SEED=S replays one trial)", kills, first)
	start := time.Now()
	w := newKillWorld(t)
	t.Logf("world built in %v", time.Since(start).Round(time.Millisecond))
	refs := map[*killScenario]*killRef{}
	tallies := map[*killScenario]*killTally{}
	var failures []string
	done := 0
	seed := first
	for ; done < kills && seed < first+uint64(4*kills); seed++ {
		sc := scs[(seed-chaosKillSeed)%uint64(len(scs))]
		if refs[sc] == nil {
			start := time.Now()
			refs[sc] = w.reference(sc)
			tallies[sc] = &killTally{}
			t.Logf("%s: uninterrupted run (%d steps) in %v", sc.name, refs[sc].steps, time.Since(start).Round(time.Millisecond))
		}
		start := time.Now()
		ref := refs[sc]
		rng := rand.New(rand.NewPCG(seed, 19))
		at := int(rng.Float64() * float64(ref.steps))
		killed, problems := w.trial(sc, ref, at, tallies[sc])
		what := fmt.Sprintf("%s killed at step %d of %d (MEMENTO_CHAOS_SEED=%d)", sc.name, at, ref.steps, seed)
		if !killed {
			t.Logf("%s: ran to completion first", what)
		} else {
			t.Logf("%s: trial took %v (%d of %d kills done)", what, time.Since(start).Round(time.Millisecond), done+1, kills)
		}
		if killed {
			done++
		}
		if len(problems) > 0 {
			tallies[sc].failures++
			for _, p := range problems {
				failures = append(failures, what+": "+p)
			}
		}
		// After every trial, so that a run cut short still has its figures.
		if p := os.Getenv("MEMENTO_CHAOS_KILL_REPORT"); p != "" {
			if err := os.WriteFile(p, []byte(killReport(scs, tallies, failures, first, seed)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	report := killReport(scs, tallies, failures, first, seed-1)
	t.Log("\n" + report)
	if done < kills {
		t.Errorf("only %d of %d trials were killed before their command completed", done, kills)
	}
	for _, f := range failures {
		t.Error(f)
	}
}
