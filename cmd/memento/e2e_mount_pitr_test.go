package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"memento/engram"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/fusefs"
	"memento/walreplay"
)

// TestMountPointInTime is the test of spaces/<space>/at/<T>/: data
// written by engram-sim, backed up mid-way and archived by `wal archive`;
// each view of a real mount is compared with `memento restore --space S
// --at T` of the same T (diff -r), its memories.jsonl with an independent
// replay of that restore, its state.json with the restore's digest and
// engram-sim's ground truth, and the view itself is a data dir engram-sim
// can replay through the mount.
func TestMountPointInTime(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	const sp = "space-a"
	mix := "store=50,update=35,delete=15"
	e.sim("run", "--dir", dd, "--spaces", "2", "--rate", "0", "--entries", "6000", "--segment-size", "64KiB",
		"--dim", "16", "--same-ts", "0.3", "--mix", mix, "--seed", "13")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "6000", "--mix", mix, "--seed", "13")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	rg := e.ranges(sp)
	if len(rg.Ranges) != 1 {
		t.Fatalf("ranges %+v, want one", rg)
	}
	lo, hi := rg.Ranges[0].FromSeq, rg.Ranges[0].ToSeq
	// at T includes every entry stamped T: ask the truth at the timestamps.
	truthAt := func(seq uint64) truthRec {
		return e.simTruth(dd, sp, "--at", strconv.FormatInt(e.simTruth(dd, sp, "--to-seq", strconv.FormatUint(seq, 10)).TimestampNS, 10))
	}
	mid := truthAt((lo + hi) / 2)
	end := e.simTruth(dd, sp)
	between := e.simTruth(dd, sp, "--at", strconv.FormatInt(mid.TimestampNS+1, 10)) // not an entry's own timestamp

	m := e.startMount(t)
	at := filepath.Join(m.mp, "spaces", sp, "at")

	// The README lists the ranges exactly as `pitr ranges` prints them.
	readme, err := os.ReadFile(filepath.Join(at, "README"))
	if err != nil {
		t.Fatal(err)
	}
	rangeRe := regexp.MustCompile(`seq \d+\.\.\d+ \(\S+ \.\. \S+\)`)
	want := rangeRe.FindString(e.mustRun("pitr", "ranges", "--space", sp))
	if want == "" || !strings.Contains(string(readme), "\n  "+want+"\n") || !strings.Contains(string(readme), "memento restore --at") {
		t.Fatalf("at/README does not list the range %q:\n%s", want, readme)
	}
	if es, err := os.ReadDir(at); err != nil || len(es) != 1 {
		t.Errorf("at/ lists %v (%v), want only README", es, err)
	}

	cases := []struct {
		name string // the directory name under at/
		want truthRec
	}{
		{walreplay.FormatTime(mid.TimestampNS), mid},
		{strconv.FormatInt(end.TimestampNS, 10), end},
		{time.Unix(0, between.TimestampNS+1).UTC().Format(time.RFC3339Nano), between},
	}
	for i, c := range cases {
		view := filepath.Join(at, c.name)
		start := time.Now()
		if _, err := os.ReadDir(view); err != nil {
			t.Fatalf("at/%s: %v\nstderr: %s", c.name, err, m.stderr)
		}
		t.Logf("at/%s (seq %d) materialized in %v", c.name, c.want.Sequence, time.Since(start).Round(time.Millisecond))
		// memories.jsonl is listed but written only when first used.
		if lazy, _ := filepath.Glob(filepath.Join(e.cache, fusefs.MountPITRDirName, "*", "*", "memories.jsonl")); len(lazy) != i {
			t.Errorf("memories.jsonl of %d views written, want %d (written before it was used)", len(lazy), i)
		}
		if _, err := os.Stat(filepath.Join(view, "memories.jsonl")); err != nil {
			t.Fatal(err)
		}

		// The same instant through `memento restore --at`.
		dst := filepath.Join(t.TempDir(), "restored")
		out := e.mustRun("restore", "--space", sp, "--at", c.name, "--target", dst)
		if mm := recoveredRe.FindStringSubmatch(out); mm == nil || mm[2] != strconv.FormatUint(c.want.Sequence, 10) || mm[4] != c.want.Digest {
			t.Fatalf("restore --at %s: %q, want seq %d digest %s", c.name, out, c.want.Sequence, c.want.Digest)
		}
		if out, err := exec.Command("diff", "-r", "--no-dereference", filepath.Join(dst, "spaces", sp), filepath.Join(view, "spaces", sp)).CombinedOutput(); err != nil {
			t.Errorf("diff -r of restore --at %s and at/%s: %v\n%s", c.name, c.name, err, out)
		}
		if out, err := exec.Command("diff", filepath.Join(dst, "metadata.json"), filepath.Join(view, "metadata.json")).CombinedOutput(); err != nil {
			t.Errorf("metadata.json: %v\n%s", err, out)
		}
		sameModesAndSizes(t, dst, view, false)

		// state.json: where the recovery stopped and the digest of the
		// replay there (= the restore's = engram-sim's ground truth).
		var st fusefs.PITState
		b, err := os.ReadFile(filepath.Join(view, "state.json"))
		if err != nil || json.Unmarshal(b, &st) != nil {
			t.Fatalf("state.json %q: %v", b, err)
		}
		if st.Seq != c.want.Sequence || st.TimestampNS != c.want.TimestampNS || st.StateDigest != c.want.Digest || st.Space != sp || st.Records < 100 {
			t.Errorf("at/%s/state.json = %+v, want seq %d ts %d digest %s", c.name, st, c.want.Sequence, c.want.TimestampNS, c.want.Digest)
		}

		// memories.jsonl is the state at T: an independent replay of the
		// restored data dir exports the same bytes.
		memories, err := os.ReadFile(filepath.Join(view, "memories.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if exp := exportJSONL(t, filepath.Join(dst, "spaces", sp, "wal")); !bytes.Equal(memories, exp) {
			t.Errorf("at/%s/memories.jsonl (%d bytes) differs from the export of restore --at (%d bytes)", c.name, len(memories), len(exp))
		}
		if lines := bytes.Count(memories, []byte("\n")); lines < 100 || lines != st.Records {
			t.Errorf("at/%s/memories.jsonl has only %d memories", c.name, lines)
		}

		// The view is a data dir: engram-sim replays its WAL through the mount.
		if got := e.simTruth(view, sp); got != c.want {
			t.Errorf("engram-sim truth of at/%s: %+v, want %+v", c.name, got, c.want)
		}
	}

	// Concurrent lookups of one instant, under two names, recover once.
	q := truthAt(lo + (hi-lo)/4)
	names := []string{walreplay.FormatTime(q.TimestampNS), strconv.FormatInt(q.TimestampNS, 10)}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := os.ReadFile(filepath.Join(at, names[i%2], "state.json"))
			if err != nil || !bytes.Contains(b, []byte(q.Digest)) {
				t.Errorf("reader %d: %s, %v", i, b, err)
			}
		}()
	}
	wg.Wait()
	line := "recovered space " + sp + " at " + walreplay.FormatTime(q.TimestampNS) + " for the mount"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(m.stdout.String(), line) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // stdout comes through a pipe
	}
	if n := strings.Count(m.stdout.String(), line); n != 1 {
		t.Errorf("8 concurrent readers recovered %d times, want 1:\n%s", n, m.stdout)
	}
	views := mountViewDirs(t, e)
	if len(views) != 4 { // the default --pitr-views is 4, and 4 instants were looked up
		t.Errorf("%d views on disk, want 4: %v", len(views), views)
	}

	// Unrecoverable instants: ENOENT and a log line with the ranges.
	for _, c := range []struct{ name, why string }{
		{strconv.FormatInt(rg.Ranges[0].FromTS-1, 10), "it is before the first backup; recoverable ranges: " + want},
		{walreplay.FormatTime(end.TimestampNS + 1), "it is after the last archived entry (seq " + strconv.FormatUint(end.Sequence, 10)},
	} {
		if _, err := os.Stat(filepath.Join(at, c.name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("at/%s: %v, want ENOENT", c.name, err)
		}
		// The mount's stderr reaches the buffer through a pipe: wait for it.
		logged := func() bool {
			for _, l := range strings.Split(m.stderr.String(), "\n") {
				if strings.Contains(l, `memento: warning: point in time cannot be recovered space=`+sp+" at="+c.name+" ") && strings.Contains(l, c.why) {
					return true
				}
			}
			return false
		}
		for deadline := time.Now().Add(5 * time.Second); !logged() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if !logged() {
			t.Errorf("no log line says why at/%s cannot be recovered (%q):\n%s", c.name, c.why, m.stderr)
		}
	}

	// Read-only everywhere.
	view := filepath.Join(at, cases[0].name)
	if err := os.WriteFile(filepath.Join(view, "memories.jsonl"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to memories.jsonl: %v, want EROFS", err)
	}
	if err := os.Remove(filepath.Join(view, "spaces", sp, "checkpoint.json")); !errors.Is(err, syscall.EROFS) {
		t.Errorf("remove in a view: %v, want EROFS", err)
	}

	// The unmount removes every view and the mount's private directory.
	m.stop(syscall.SIGINT, 15*time.Second)
	if left := mountViewDirs(t, e); len(left) != 0 {
		t.Errorf("views left after the unmount: %v", left)
	}
	if base, _ := filepath.Glob(filepath.Join(e.cache, fusefs.MountPITRDirName, "*")); len(base) != 0 {
		t.Errorf("private directories left after the unmount: %v", base)
	}
}

// mountViewDirs lists the materialized views of the env's mounts.
func mountViewDirs(t *testing.T, e *env) []string {
	t.Helper()
	views, err := filepath.Glob(filepath.Join(e.cache, fusefs.MountPITRDirName, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return views
}

// exportJSONL replays a WAL directory to its end and returns its JSON lines.
func exportJSONL(t *testing.T, walDir string) []byte {
	t.Helper()
	l, err := walreplay.OpenLog(walDir)
	if err != nil {
		t.Fatal(err)
	}
	st := walreplay.NewState()
	if _, err := l.Replay(context.Background(), walreplay.Target{}, st); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := st.ExportJSONL(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sameModesAndSizes checks that every entry of want exists in got with the
// same type, permissions and size, and with checkTimes the same mtime. (Point
// in time views differ in times: WAL segments fetched from the archive are
// written when they are fetched.)
func sameModesAndSizes(t *testing.T, want, got string, checkTimes bool) {
	t.Helper()
	n := 0
	mustOK(t, filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		if rel == engram.MementoDirName && d.IsDir() {
			// memento's own files in a restored data dir (its identity
			// and timeline), not part of the recovered space.
			return filepath.SkipDir
		}
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, err := os.Lstat(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		n++
		if wi.Mode() != gi.Mode() || (!wi.IsDir() && wi.Size() != gi.Size()) {
			t.Errorf("%s: %v %d, want %v %d", rel, gi.Mode(), gi.Size(), wi.Mode(), wi.Size())
		}
		if checkTimes && rel != "." && !wi.ModTime().Equal(gi.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
		}
		return nil
	}))
	if n < 10 {
		t.Errorf("compared only %d entries", n)
	}
}
