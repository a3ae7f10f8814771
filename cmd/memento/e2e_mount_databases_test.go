package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"memento/engram"
	"memento/fusefs"
	"memento/walreplay"
)

// TestMountDatabases (issue 14): two engram-sim data dirs with the same
// space id, backed up from two hosts (--host) and WAL-archived into one
// repository. Through a real mount, hosts/<h>/spaces/<s>/at/<T>/ of each
// host is that database's state at T (engram-sim truth of its own data
// dir; the same T gives each database its own digest), and so is
// hosts/<h>/identities/<id>/spaces/<s>/at/<T>/; spaces/<s>/ shows neither:
// a README naming both databases' directories, and at/<T> is ENOENT with a
// log line naming the candidates.
func TestMountDatabases(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end mount identity test")
	}
	e := newEnv(t)
	work := t.TempDir()
	const sp = "space-a"
	dirs := []string{filepath.Join(work, "db1"), filepath.Join(work, "db2")}
	hosts := []string{"host-one", "host-two"}
	simRun := func(dd, seed string, n int) {
		e.simTimelineRun(dd, n, seed)
	}
	// Interleaved, so that an instant during db1's second run is in both
	// databases' recoverable ranges: db2 is then at its backup.
	for i, dd := range dirs {
		simRun(dd, strconv.Itoa(10+i), 800)
	}
	backedUp := e.simTruth(dirs[0], sp)
	for i, dd := range dirs {
		e.mustRun("backup", "--data-dir", dd, "--all", "--host", hosts[i])
	}
	for i, dd := range dirs {
		simRun(dd, strconv.Itoa(20+i), 1000)
		e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	}
	ids := make([]string, 2)
	for i, dd := range dirs {
		id, err := engram.ReadIdentity(dd)
		mustOK(t, err)
		ids[i] = id.Identity
	}
	end1 := e.simTruth(dirs[0], sp)
	seqs, tss := walEntryList(t, dirs[0], sp)
	k := backedUp.Sequence + (end1.Sequence-backedUp.Sequence)/2
	at := tss[k-seqs[0]]
	truths := []truthRec{e.simTruth(dirs[0], sp, "--at", strconv.FormatInt(at, 10)), e.simTruth(dirs[1], sp, "--at", strconv.FormatInt(at, 10))}
	if truths[0].Sequence <= backedUp.Sequence || truths[0].Digest == truths[1].Digest {
		t.Fatalf("at %d: db1 %+v, db2 %+v: the test would prove nothing", at, truths[0], truths[1])
	}

	m := e.startMount(t)
	name := walreplay.FormatTime(at)
	// spaces/<s>/ mixes nothing: it explains.
	top := filepath.Join(m.mp, "spaces", sp)
	es, err := os.ReadDir(top)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if err != nil || !slices.Equal(names, []string{"README", "at"}) {
		t.Fatalf("spaces/%s lists %q (%v), want README and at", sp, names, err)
	}
	for _, p := range []string{"README", "at/README"} {
		b, err := os.ReadFile(filepath.Join(top, p))
		mustOK(t, err)
		for i, id := range ids {
			if want := "hosts/" + hosts[i] + "/spaces/" + sp + "/  (identity " + id; !strings.Contains(string(b), want) {
				t.Errorf("spaces/%s/%s does not name %q:\n%s", sp, p, want, b)
			}
		}
	}
	for _, p := range []string{"latest", "by-time", "at/" + name} {
		if _, err := os.Stat(filepath.Join(top, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("spaces/%s/%s: %v, want ENOENT", sp, p, err)
		}
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(m.stderr.String(), "at="+name); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for spaces/%s/at/%s:\n%s", sp, name, m.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log := m.stderr.String(); !strings.Contains(log, "more than one database") || !strings.Contains(log, ids[0]) || !strings.Contains(log, ids[1]) {
		t.Errorf("the log line does not name the candidates:\n%s", log)
	}
	if views := mountViewDirs(t, e); len(views) != 0 {
		t.Errorf("spaces/%s/at/%s recovered something: %v", sp, name, views)
	}

	// Each database's own directory: its own truth at the same instant.
	check := func(rel string, i int) {
		t.Helper()
		view := filepath.Join(m.mp, rel, "at", name)
		var st fusefs.PITState
		b, err := os.ReadFile(filepath.Join(view, "state.json"))
		if err != nil || json.Unmarshal(b, &st) != nil {
			t.Fatalf("%s/state.json %q: %v\nstderr: %s", view, b, err, m.stderr)
		}
		if want := truths[i]; st.Seq != want.Sequence || st.StateDigest != want.Digest || st.Identity != ids[i] {
			t.Errorf("%s: seq %d digest %s identity %s, want seq %d digest %s identity %s", rel, st.Seq, st.StateDigest, st.Identity, want.Sequence, want.Digest, ids[i])
		}
		if got := e.simTruth(view, sp); got.Digest != truths[i].Digest || got.Sequence != truths[i].Sequence {
			t.Errorf("%s: engram-sim replays the view to %+v, want %+v", rel, got, truths[i])
		}
		link, err := os.Readlink(filepath.Join(m.mp, rel, "latest"))
		if err != nil || !strings.HasPrefix(link, strings.Repeat("../", strings.Count(rel, "/")+1)+"snapshots/") {
			t.Errorf("%s/latest -> %q, %v", rel, link, err)
		}
		if bt, err := os.ReadDir(filepath.Join(m.mp, rel, "by-time")); err != nil || len(bt) != 1 {
			t.Errorf("%s/by-time lists %v (%v), want the database's one snapshot", rel, bt, err)
		}
		// Its timelines are the database's (one each here).
		tl, err := os.ReadDir(filepath.Join(m.mp, rel, "timelines"))
		if err != nil || len(tl) != 2 || tl[0].Name() != "1" || tl[1].Name() != "README" {
			t.Errorf("%s/timelines lists %v (%v), want 1 and README", rel, tl, err)
		}
		if b, err := os.ReadFile(filepath.Join(m.mp, rel, "timelines", "README")); err != nil || !strings.Contains(string(b), "timeline 1: 1/at/") ||
			!strings.Contains(string(b), "--space "+sp+" --identity "+ids[i]) {
			t.Errorf("%s/timelines/README: %v\n%s", rel, err, b)
		}
		readme, err := os.ReadFile(filepath.Join(m.mp, rel, "at", "README"))
		if err != nil || !strings.Contains(string(readme), "--space "+sp+" --identity "+ids[i]) {
			t.Errorf("%s/at/README does not name the database: %v\n%s", rel, err, readme)
		}
	}
	for i, h := range hosts {
		check(filepath.Join("hosts", h, "spaces", sp), i)
	}
	check(filepath.Join("hosts", hosts[1], "identities", ids[1], "spaces", sp), 1)
}
