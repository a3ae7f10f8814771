package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"memento/walreplay"
)

// chaosRequireRoot skips a test that mounts file systems when not root,
// except under CI=true, where nothing skips (CI runs as root).
func chaosRequireRoot(t *testing.T) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		if os.Geteuid() != 0 {
			t.Fatal("CI=true: this test mounts a tmpfs and needs root")
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
}

// mountTmpfs mounts a tmpfs of size (mount's size= syntax) at a new
// directory and unmounts it when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// tempFilesIn lists the backend's temporary files (.tmp-*) under a local
// repository, except its space reserve.
func tempFilesIn(t *testing.T, repoDir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(repoDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") && p != filepath.Join(repoDir, ".tmp-reserve") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestChaosDiskFull: the repository's file system fills up during a backup
// and during `wal archive`. Each fails with one line naming ENOSPC and the
// repository path (exit 1), lists no snapshot it did not finish, leaves no
// temporary file and a repository `check` finds clean once there is room;
// the next run then succeeds, and a point-in-time restore of the end equals
// engram-sim's truth. A restore into a full target fails the same way,
// prints no success, removes its staging dir and leaves the old content of
// the target in place.
func TestChaosDiskFull(t *testing.T) {
	chaosEnvFull(t)
	chaosRequireRoot(t)
	fsDir := mountTmpfs(t, "64m")
	e := &env{t: t, repo: filepath.Join(fsDir, "repo"), cache: filepath.Join(t.TempDir(), "cache"), password: "correct horse"}
	e.mustRun("init")
	dd := e.simData("31")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	before := e.snapshotIDs()
	e.sim("mutate", "--dir", dd, "--seed", "1", "--wal-share", "0.5", "--warm-share", "0.3")

	// Full from the start (the lock cannot be written), and full in the
	// middle of the run (room left for the lock and some packs).
	var rep strings.Builder
	rep.WriteString("## Chaos: full disks (tmpfs)\n\n`make chaos-env` (TestChaosDiskFull). Each failed run: one line, exit 1, " +
		"no snapshot of a failed space, no temporary file; with room again `check --read-data` clean, the next backup and " +
		"`wal archive` succeed and PITR restores of both spaces equal engram-sim truth.\n\n| run | outcome |\n|---|---|\n")
	filler := fillFileSystem(t, fsDir)
	for _, room := range []int64{0, 1 << 20, 256 << 10} {
		fi, err := os.Stat(filler)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filler, max(fi.Size()-room, 0)); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"backup", "--data-dir", dd, "--all"}, {"wal", "archive", "--data-dir", dd, "--all"}} {
			what := fmt.Sprintf("memento %s with %d KiB free", strings.Join(args, " "), freeBytes(t, fsDir)>>10)
			r := e.run(args...)
			if r.code == 0 {
				// The run fitted in the room left: fill up again.
				t.Logf("%s: fitted", what)
				fmt.Fprintf(&rep, "| %s | fitted, saved |\n", strings.Replace(what, dd, "DD", 1))
				continue
			}
			r = e.wantFailAgain(r, exitFailure, "no space left on device", args...)
			if room == 0 && args[0] == "backup" && !strings.HasSuffix(strings.TrimSpace(r.stderr), "; 2 audit records not written either") {
				t.Errorf("%s: the audit records of both spaces' failures were lost; the error line does not say so:\n%s", what, r.stderr)
			}
			if !strings.Contains(r.stderr, "(the file system of "+e.repo+" is full)") {
				t.Errorf("%s: the error does not name the repository path %s:\n%s", what, e.repo, r.stderr)
			}
			// A space that failed reports no progress and gained no
			// snapshot; a space that fitted may have (it is saved).
			for _, sp := range []string{"space-a", "space-b"} {
				if !strings.Contains(r.stderr, "space "+sp+":") && !(args[0] == "wal" && !strings.Contains(r.stderr, "space ")) {
					continue
				}
				for _, l := range strings.Split(r.stdout, "\n") {
					if strings.Contains(l, sp) {
						t.Errorf("%s reports progress of the failed %s it did not save: %s", what, sp, l)
					}
				}
				for _, sn := range chaosSnapshots(e) {
					if sn.Space == sp && !slices.Contains(before, sn.ID) {
						t.Errorf("%s: a new snapshot %s of the failed %s", what, sn.ID, sp)
					}
				}
			}
			if tmp := tempFilesIn(t, e.repo); len(tmp) > 0 {
				t.Errorf("%s left temporary files: %v", what, tmp)
			}
			t.Logf("%s: %s", what, strings.TrimSpace(r.stderr[strings.LastIndex(r.stderr, "memento: "):]))
			fmt.Fprintf(&rep, "| %s | exit %d, ENOSPC naming the repository |\n", strings.Replace(what, dd, "DD", 1), r.code)
		}
	}

	// Room again (the tmpfs grown, the filler gone): clean, and the next
	// runs succeed.
	if out, err := exec.Command("mount", "-o", "remount,size=128m", fsDir).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	e.mustRun("check", "--read-data")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	if got := e.snapshotIDs(); len(got) < len(before)+2 {
		t.Fatalf("after the disk-full runs: %d snapshots, want at least %d", len(got), len(before)+2)
	}
	e.mustRun("check", "--read-data")
	for _, sp := range []string{"space-a", "space-b"} {
		want := e.simTruth(dd, sp)
		e.pitr(sp, "--at", walreplay.FormatTime(want.TimestampNS), want)
	}

	// Restore target full: a 2 MiB tmpfs holding the old content.
	src := filepath.Join(t.TempDir(), "src")
	writeChaosTree(t, src, 30, 5)
	id := chaosBackupID(e, src)
	tfs := mountTmpfs(t, "2m")
	target := filepath.Join(tfs, "tgt")
	writeChaosTree(t, target, 4, 6)
	old := contentDigest(t, target)
	r := e.wantFail(exitFailure, "no space left on device", "restore", id, "--target", target)
	if !strings.Contains(r.stderr, tfs) {
		t.Errorf("restore into a full target: the error does not name the target path:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout, "restored") {
		t.Errorf("restore into a full target prints success:\n%s", r.stdout)
	}
	if got := contentDigest(t, target); len(digestDiffs(old, got)) > 0 {
		t.Errorf("restore into a full target changed the old content: %v", digestDiffs(old, got))
	}
	ents, err := os.ReadDir(tfs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "tgt" {
		var names []string
		for _, de := range ents {
			names = append(names, de.Name())
		}
		t.Errorf("restore into a full target left %v beside the target, want only tgt", names)
	}
	fmt.Fprintf(&rep, "| restore of a 3.5 MiB snapshot into a 2 MiB tmpfs | exit %d, ENOSPC naming the target; old content intact, no staging dir left, no success printed |\n", r.code)
	// Room again: the restore succeeds, with the old content kept aside.
	if out, err := exec.Command("mount", "-o", "remount,size=32m", tfs).CombinedOutput(); err != nil {
		t.Fatalf("grow the target tmpfs: %v: %s", err, out)
	}
	e.mustRun("restore", id, "--target", target)
	// A path backup restores under the path's absolute name (docs/cli.md).
	if d := digestDiffs(contentDigest(t, src), contentDigest(t, filepath.Join(target, src))); len(d) > 0 {
		t.Errorf("restore after the full target: %v", d)
	}
	appendChaosEnvReport(t, rep.String())
}

// appendChaosEnvReport appends a section to MEMENTO_CHAOS_ENV_REPORT, if set.
func appendChaosEnvReport(t *testing.T, section string) {
	t.Helper()
	path := os.Getenv("MEMENTO_CHAOS_ENV_REPORT")
	if path == "" || t.Failed() {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(section + "\n"); err != nil {
		t.Fatal(err)
	}
}

// chaosBackupID backs up a path and returns the snapshot's ID.
func chaosBackupID(e *env, path string) string {
	e.t.Helper()
	var outs []backupOut
	if err := json.Unmarshal([]byte(e.mustRun("backup", path, "--json")), &outs); err != nil || len(outs) != 1 {
		e.t.Fatalf("backup --json: %v (%d snapshots)", err, len(outs))
	}
	return outs[0].Snapshot
}

// wantFailAgain is wantFail on a result already had.
func (e *env) wantFailAgain(r result, want int, msg string, args ...string) result {
	e.t.Helper()
	if r.code != want {
		e.t.Fatalf("memento %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.code, want, r.stderr)
	}
	if !strings.Contains(r.stderr, msg) {
		e.t.Fatalf("memento %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, msg)
	}
	if n := strings.Count("\n"+r.stderr, "\nmemento: "); n != 1 {
		e.t.Fatalf("memento %s: want exactly one error line, got:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}

type chaosSnapshot struct {
	ID    string `json:"id"`
	Space string `json:"space"`
}

func chaosSnapshots(e *env) []chaosSnapshot {
	e.t.Helper()
	var out []chaosSnapshot
	if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// chaosEnvFull says whether the environment-fault chaos tests run: they
// take minutes (timeouts, retries, tmpfs fills), so make test leaves them to
// `make chaos-env` (MEMENTO_CHAOS_ENV=1).
func chaosEnvFull(t *testing.T) {
	t.Helper()
	if os.Getenv("MEMENTO_CHAOS_ENV") != "1" {
		t.Skip("MEMENTO_CHAOS_ENV=1 (make chaos-env) runs it")
	}
}
