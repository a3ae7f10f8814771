package drill

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/repo/backend/s3/miniotest"
)

// TestDrill runs the five scenarios of the runbook end to end (small data
// unless DRILL_SIZE is set: `make drill`). With DRILL_REPORT=FILE it writes
// the results table there.
func TestDrill(t *testing.T) {
	for _, tool := range []string{"bash", "jq", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the runbook needs %s, required in CI: %v", tool, err)
			}
			t.Skipf("skipping: the runbook needs %s: %v", tool, err)
		}
	}
	rb := loadRunbook(t)
	srv := miniotest.Start(t)
	p := paramsFromEnv(t)
	var (
		results []result
		mu      sync.Mutex
	)
	for _, sc := range []struct {
		name, target string
		run          func(d *drill)
	}{
		{"corruption", "15 min", (*drill).corruption},
		{"loss", "30 min", (*drill).loss},
		{"deletion", "20 min", (*drill).deletion},
		{"datacenter", "60 min", (*drill).datacenter},
		{"ransomware", "45 min", (*drill).ransomware},
	} {
		t.Run(sc.name, func(t *testing.T) {
			if os.Getenv("DRILL_SIZE") == "" {
				t.Parallel() // the small case: time matters more than figures
			}
			d := newDrill(t, srv, rb, p)
			d.target = sc.target
			// the figures count even when the day after fails
			t.Cleanup(func() {
				mu.Lock()
				defer mu.Unlock()
				results = append(results, d.results...)
				// after each scenario, so that a long run interrupted
				// keeps the figures it has
				if out := os.Getenv("DRILL_REPORT"); out != "" {
					sort.Slice(results, func(i, j int) bool { return results[i].scenario < results[j].scenario })
					writeReport(t, out, results)
				}
			})
			sc.run(d)
		})
	}
}

// record keeps one recovery's figures.
func (d *drill) record(r result) {
	d.t.Helper()
	r.target, r.size, r.load = d.target, d.p.size, d.load
	d.t.Logf("%s: RTO %s, RPO %s, %d entries written and not recovered, %d archived and not recovered %s",
		r.scenario, r.rto.Round(time.Millisecond), r.rpo.Round(time.Millisecond), r.lost, r.archivedLost, r.note)
	if r.archivedLost != 0 {
		d.t.Errorf("%s: %d archived entries lost", r.scenario, r.archivedLost)
	}
	d.results = append(d.results, r)
}

func writeReport(t *testing.T, file string, rs []result) {
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | seed target | data | measured RTO | RPO | entries lost (written, not recovered) | archived entries lost | load average |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f s | %.3f s | %d | %d | %s |\n", r.scenario, r.target, r.size, r.rto.Seconds(), r.rpo.Seconds(), r.lost, r.archivedLost, r.load)
	}
	fmt.Fprintf(&b, "\n%s, `make drill DRILL_SIZE=%s`.", time.Now().UTC().Format("2006-01-02 15:04 MST"), os.Getenv("DRILL_SIZE"))
	for _, n := range notes(rs) {
		fmt.Fprintf(&b, " %s.", n)
	}
	b.WriteString("\n")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func notes(rs []result) []string {
	var n []string
	for _, r := range rs {
		if r.note != "" {
			n = append(n, r.scenario+": "+r.note)
		}
	}
	return n
}

// archived is every space's archive end in repo.
func (d *drill) archived(repo string) map[string]uint64 {
	a := map[string]uint64{}
	for _, s := range d.spaces {
		a[s] = d.archiveEnd(repo, s)
	}
	return a
}

// recover runs the detection block (the clock starts), checks its output,
// runs the restore blocks, starts Engram on dir and verifies it against
// want: the RTO.
// A running Engram (damaged) is stopped after the detection, before the
// restore.
func (d *drill) recover(detect string, mustSay []string, running *engram, restore []string, dir string, want map[string]truthLine) time.Duration {
	d.t.Helper()
	start := time.Now()
	out := d.sh(detect)
	for _, m := range mustSay {
		if !strings.Contains(out, m) {
			d.t.Fatalf("detection (%s) does not say %q:\n%s", detect, m, out)
		}
	}
	if running != nil {
		running.stop()
	}
	for _, r := range restore {
		d.sh(r)
	}
	e := d.serve(dir)
	defer e.stop()
	var names []string
	for s := range want {
		names = append(names, s)
	}
	d.vars["SPACES"] = strings.Join(names, " ")
	d.sh("all/verify")
	d.checkServing(e, want)
	return time.Since(start)
}

// wanted is the ground truth at each space's archive end.
func (d *drill) wanted(archived map[string]uint64, spaces ...string) map[string]truthLine {
	w := map[string]truthLine{}
	for _, s := range spaces {
		w[s] = d.truth(s, archived[s])
	}
	return w
}

// 1. A tier file (one space's warm pages) and a WAL segment (another
// space's first, sealed and archived) are damaged on disk.
func (d *drill) corruption() {
	d.prepare()
	d.crash()
	dd := d.vars["DATA_DIR"]
	archived := d.archived(d.vars["REPO"])
	walSpace, tierSpace := d.spaces[0], d.spaces[1]
	segs, err := filepath.Glob(filepath.Join(dd, "spaces", walSpace, "wal", "wal-*.log"))
	if err != nil || len(segs) < 2 {
		d.t.Fatalf("space %s has %d WAL segments, want a sealed one (%v)", walSpace, len(segs), err)
	}
	damageBytes(d.t, segs[0])
	tier := filepath.Join(dd, "spaces", tierSpace, "warm", "warm_tier.dat")
	damageBytes(d.t, tier)
	want := d.wanted(archived, walSpace, tierSpace)

	e := d.serve(dd) // Engram, restarted, finds the damage: the alert
	d.vars["SPACES"] = walSpace + " " + tierSpace
	rto := d.recover("corruption/detect",
		[]string{"unhealthy", filepath.Base(segs[0]), "spaces/" + tierSpace + "/warm/warm_tier.dat", "wal verify: exit 5"},
		e, []string{"corruption/restore"}, dd, want)
	rpo, lost, archLost := d.figures(want, archived)
	d.record(result{scenario: "1. corruption (a tier file, a WAL segment)", rto: rto, rpo: rpo, lost: lost, archivedLost: archLost})
	d.dayAfter("all/resume", "REPO")
}

// 2. The data dir is gone; the primary repository survived; everything is
// restored from the replica.
func (d *drill) loss() {
	d.prepare()
	d.crash()
	dd := d.vars["DATA_DIR"]
	archived := d.archived(d.vars["REPO"])
	if err := os.RemoveAll(dd); err != nil {
		d.t.Fatal(err)
	}
	want := d.wanted(archived, d.spaces...)
	rto := d.recover("loss/detect", []string{"is gone"}, nil, []string{"loss/restore"}, dd, want)
	rpo, lost, archLost := d.figures(want, archived)
	d.record(result{scenario: "2. complete data loss (from the replica)", rto: rto, rpo: rpo, lost: lost, archivedLost: archLost})
	d.dayAfter("all/resume", "REPO")
}

// 3. A space is deleted; then, separately, a bad write deletes memories
// and the spaces go back to the instant before it, on a new timeline.
func (d *drill) deletion() {
	d.prepare()
	d.crash()
	dd, repo := d.vars["DATA_DIR"], d.vars["REPO"]
	archived := d.archived(repo)
	space := d.spaces[2]
	if err := os.RemoveAll(filepath.Join(dd, "spaces", space)); err != nil {
		d.t.Fatal(err)
	}
	want := d.wanted(archived, space)
	d.vars["SPACE"] = space
	rtoA := d.recover("deletion/detect-space", []string{"space " + space + " is missing"}, nil, []string{"deletion/restore-space"}, dd, want)
	rpo, lost, archLost := d.figures(want, archived)
	d.record(result{scenario: "3a. accidental deletion of a space", rto: rtoA, rpo: rpo, lost: lost, archivedLost: archLost})

	// The bad write: archiving runs, the good state is recorded, then a
	// job deletes memories in every space.
	d.memento(repo, "wal", "archive", "--data-dir", dd, "--all")
	good := map[string]truthLine{}
	var at int64
	for _, s := range d.spaces {
		var l truthLine
		if err := json.Unmarshal([]byte(d.must("engram-sim", "truth", "--dir", dd, "--space", s)), &l); err != nil {
			d.t.Fatal(err)
		}
		good[s] = l
		at = max(at, l.TimestampNS)
	}
	goodCount := d.count(dd, space)
	d.must("engram-sim", "run", "--dir", dd, "--rate", "0", "--entries", fmt.Sprint(d.p.live), "--mix", "store=1,delete=50", "--same-ts", "0")
	d.memento(repo, "wal", "archive", "--data-dir", dd, "--all")
	if bad := d.count(dd, space); bad >= goodCount {
		d.t.Fatalf("the bad write left %d memories of %d", bad, goodCount)
	}

	e := d.serve(dd) // the bad state serves; the count dropped
	d.vars["AT"] = fmt.Sprint(at)
	d.vars["SPACES"] = strings.Join(d.spaces, " ")
	rtoB := d.recover("deletion/detect-write", []string{"space " + space + ": "}, e, []string{"deletion/restore-at"}, dd, good)
	d.record(result{scenario: "3b. memories deleted by a bad write (PITR to the instant before)", rto: rtoB,
		note: "recovered to exactly the instant before the bad write"})
	if got := d.count(dd, space); got != goodCount {
		d.t.Fatalf("after the recovery space %s has %d memories, %d before the bad write", space, got, goodCount)
	}
	d.dayAfter("all/resume", "REPO")
	if out := d.sh("deletion/timelines"); !strings.Contains(out, "timeline 1:") || !strings.Contains(out, "timeline 2:") {
		d.t.Fatalf("after the recovery and the resume, want timelines 1 and 2:\n%s", out)
	}
}

// count is the memory count of space in dir, as Engram answers it.
func (d *drill) count(dir, space string) int {
	d.t.Helper()
	e := d.serve(dir)
	defer e.stop()
	var c struct {
		Count int `json:"count"`
	}
	if err := e.get("/api/v1/spaces/"+space+"/count", &c); err != nil {
		d.t.Fatal(err)
	}
	return c.Count
}

// 4. The host and the primary repository are gone; a new host restores
// from the replica and archives into a new primary.
func (d *drill) datacenter() {
	d.prepare()
	d.crash()
	archived := d.archived(d.vars["REPLICA"])
	for _, dir := range []string{d.vars["DATA_DIR"], d.vars["REPO"], filepath.Join(d.work, "cache")} {
		if err := os.RemoveAll(dir); err != nil {
			d.t.Fatal(err)
		}
	}
	newHost := filepath.Join(d.work, "new-host")
	d.vars["DATA_DIR"] = filepath.Join(newHost, "data")
	d.baseEnv = append(d.baseEnv, "MEMENTO_CACHE_DIR="+filepath.Join(newHost, "cache"))
	want := d.wanted(archived, d.spaces...)
	rto := d.recover("datacenter/detect", []string{"exit 3", "replica:"}, nil, []string{"datacenter/restore"}, d.vars["DATA_DIR"], want)
	rpo, lost, archLost := d.figures(want, archived)
	d.record(result{scenario: "4. datacenter failure (new host, from the replica)", rto: rto, rpo: rpo, lost: lost, archivedLost: archLost})
	d.dayAfter("datacenter/new-primary", "NEW_REPO")
}

// 5. The data dir is encrypted in place; the attacker's backup must not
// replace good history; the last verified state restores on a clean host.
// The replica is a bucket with S3 Object Lock (docs/operations/
// ransomware.md; replicate makes it, every file retained for a day), and
// the attacker goes for it with the backup host's credentials too: it
// deletes nothing, and after recover-versions it restores to the truth.
func (d *drill) ransomware() {
	bucket := lockedBucket()
	d.vars["REPLICA"] = d.srv.URL(bucket, "engram")
	d.baseEnv = append(d.baseEnv, "MEMENTO_S3_OBJECT_LOCK_DAYS=1")
	d.prepare()
	d.crash()
	dd, repo := d.vars["DATA_DIR"], d.vars["REPO"]
	archived := d.archived(repo)
	replicaArchived := d.archived(d.vars["REPLICA"])
	replicaBefore := d.storedVersions(bucket, "engram/")
	attack := d.attackReplica(bucket, "engram/")
	// Every WAL segment and tier file, garbled in place (the small JSON
	// files are left: a whole-file garble of checkpoint.json fails the
	// backup outright, exit 1, which refuses it too).
	var garbled int
	for _, s := range d.spaces {
		for _, pat := range []string{"wal/wal-*.log", "warm/*", "cold/*", "hot/*"} {
			files, _ := filepath.Glob(filepath.Join(dd, "spaces", s, pat))
			for _, f := range files {
				encryptInPlace(d.t, f)
				garbled++
			}
		}
	}
	if garbled == 0 {
		d.t.Fatal("nothing to garble")
	}
	want := d.wanted(archived, d.spaces...)
	clean := filepath.Join(d.work, "clean-host", "data")
	start := time.Now()
	out := d.sh("ransomware/detect")
	for _, m := range []string{"wal verify: exit 5", "backup: exit 5"} {
		if !strings.Contains(out, m) {
			d.t.Fatalf("ransomware detection does not say %q:\n%s", m, out)
		}
	}
	garbledDir := dd
	d.vars["DATA_DIR"] = clean
	// Whether the attacker's backup stored a snapshot marked damaged (a space
	// whose WAL no longer verifies) or nothing at all (tier files refused
	// first) depends on which check a space meets first: the restore block
	// must pick the last good snapshot either way.
	d.recover("ransomware/restore", nil, nil, nil, clean, want)
	rto := time.Since(start)
	rpo, lost, archLost := d.figures(want, archived)
	if _, err := os.Stat(garbledDir); err != nil {
		d.t.Fatalf("the garbled data dir is evidence and stays: %v", err)
	}
	d.record(result{scenario: "5. ransomware (data dir encrypted in place)", rto: rto, rpo: rpo, lost: lost, archivedLost: archLost,
		note: "the attacker's backup exits 5 (garbled tiers refused, or a WAL that does not verify marked damaged); " + attack})

	// The replica, recovered from its retained versions, restores to the
	// truth at its own archive end.
	scratch := d.vars["SCRATCH"]
	d.vars["SCRATCH"] = filepath.Join(d.work, "replica-restore")
	start = time.Now()
	out = d.sh("ransomware/replica")
	if !strings.Contains(out, "recovered config\n") || !strings.Contains(out, " recovered, 0 without a good version") {
		d.t.Fatalf("recover-versions on the replica:\n%s", out)
	}
	d.checkVersionsKept(bucket, "engram/", replicaBefore)
	for _, s := range d.spaces {
		var got truthLine
		if err := json.Unmarshal([]byte(d.must("engram-sim", "truth", "--dir", d.vars["SCRATCH"], "--space", s)), &got); err != nil {
			d.t.Fatal(err)
		}
		if w := d.truth(s, replicaArchived[s]); got != w {
			d.t.Fatalf("the recovered replica restores space %s to %+v, the truth at its archive end is %+v", s, got, w)
		}
	}
	d.t.Logf("the replica recovered and restored in %.1fs", time.Since(start).Seconds())
	d.vars["SCRATCH"] = scratch
	d.dayAfter("all/resume", "REPO")
}
