package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"memento/fusefs"
	"memento/repo"
	"memento/repo/backup"
)

// TestSymlinkedSpaceAndWALBackup (issue 19 item 4): a space directory kept
// elsewhere behind a symlink (spaces/space-a -> disk2/space-a), a wal/ and
// a tier behind one (spaces/space-b/wal -> disk2/wal-b, hot/ too; a
// quiesced backup stages hot/ from there) are backed up as the
// directories they point to, with --space and --all, and the summary says
// so; `wal archive --all` archives both. A symlink under spaces/ that points
// to nothing is an error naming it (exit 1), and the other spaces are still
// backed up and archived.
func TestSymlinkedSpaceAndWALBackup(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	e.sim("run", "--dir", dd, "--spaces", "2", "--rate", "0", "--entries", "1500", "--segment-size", "32KiB",
		"--dim", "8", "--seed", "5")
	disk2 := filepath.Join(work, "disk2")
	mustOK(t, os.Mkdir(disk2, 0o755))
	spaceA, walB, hotB := filepath.Join(disk2, "space-a"), filepath.Join(disk2, "wal-b"), filepath.Join(disk2, "hot-b")
	mustOK(t, os.Rename(filepath.Join(dd, "spaces", "space-a"), spaceA))
	mustOK(t, os.Symlink(spaceA, filepath.Join(dd, "spaces", "space-a")))
	linksB := map[string]string{"wal": walB, "hot": hotB}
	for name, to := range linksB {
		mustOK(t, os.Rename(filepath.Join(dd, "spaces", "space-b", name), to))
		mustOK(t, os.Symlink(to, filepath.Join(dd, "spaces", "space-b", name)))
	}

	// What a restore must give back: the directories the symlinks point to.
	wantA := repoTreeDigest(t, spaceA)
	wantB := repoTreeDigest(t, filepath.Join(dd, "spaces", "space-b"))
	for name, to := range linksB {
		fi, err := os.Stat(to)
		mustOK(t, err)
		wantB[name] = fi.Mode().String()
		for p, d := range repoTreeDigest(t, to) {
			wantB[name+"/"+p] = d
		}
	}
	if len(repoTreeDigest(t, walB)) < 3 || len(repoTreeDigest(t, hotB)) == 0 {
		t.Fatalf("engram-sim wrote too little to test with")
	}
	restored := func(sp string) map[string]string {
		dst := filepath.Join(t.TempDir(), "r")
		e.mustRun("restore", "--space", sp, "--latest", "--target", dst)
		return repoTreeDigest(t, filepath.Join(dst, "spaces", sp))
	}

	out := e.mustRun("backup", "--data-dir", dd, "--space", "space-a")
	if !strings.Contains(out, "symlinks backed up as the directories they point to: spaces/space-a -> "+spaceA) {
		t.Errorf("backup --space space-a does not say it followed the symlink:\n%s", out)
	}
	sameDigest(t, "space-a (a symlinked space dir) restored", wantA, restored("space-a"))
	// Quiesced (hooks that do nothing): the tiers are staged, hot/ from
	// the directory it points to.
	out = e.mustRun("backup", "--data-dir", dd, "--space", "space-b", "--pre-hook", "true", "--post-hook", "true")
	if !strings.Contains(out, "spaces/space-b/wal -> "+walB) {
		t.Errorf("backup --space space-b does not say it followed the wal/ symlink:\n%s", out)
	}
	sameDigest(t, "space-b (symlinked wal/ and hot/) restored", wantB, restored("space-b"))

	// --all backs up both and says so.
	out = e.mustRun("backup", "--data-dir", dd, "--all")
	if strings.Count(out, " saved: space ") != 2 || !strings.Contains(out, "spaces/space-a -> ") || !strings.Contains(out, "spaces/space-b/wal -> ") {
		t.Errorf("backup --all:\n%s", out)
	}
	sameDigest(t, "space-a restored after --all", wantA, restored("space-a"))
	sameDigest(t, "space-b restored after --all", wantB, restored("space-b"))
	out = e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	for _, sp := range []string{"space-a", "space-b"} {
		if !strings.Contains(out, "space "+sp+": ") || strings.Contains(out, "space "+sp+": 0 segments updated") {
			t.Errorf("wal archive --all did not archive %s:\n%s", sp, out)
		}
	}

	// A symlink to nothing under spaces/: an error naming it, exit 1, the
	// other spaces still done.
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "300", "--seed", "5")
	dangling := filepath.Join(dd, "spaces", "space-c")
	mustOK(t, os.Symlink(filepath.Join(work, "gone"), dangling))
	r := e.wantFail(1, dangling+" is a symlink to "+filepath.Join(work, "gone")+", which is not a directory", "backup", "--data-dir", dd, "--all")
	if strings.Count(r.stdout, " saved: space ") != 2 || !strings.Contains(r.stdout, "2 of 3 snapshots were saved") {
		t.Errorf("backup --all with a dangling space symlink:\n%s", r.stdout)
	}
	r = e.wantFail(1, "space space-c: "+dangling+" is a symlink", "wal", "archive", "--data-dir", dd, "--all")
	for _, sp := range []string{"space-a", "space-b"} {
		if !strings.Contains(r.stdout, "space "+sp+": ") || strings.Contains(r.stdout, "space "+sp+": 0 segments updated") {
			t.Errorf("wal archive --all with a dangling space symlink did not archive %s:\n%s", sp, r.stdout)
		}
	}
	// --space with a dangling wal/ symlink: refused, naming it.
	mustOK(t, os.Remove(dangling))
	mustOK(t, os.Remove(filepath.Join(dd, "spaces", "space-b", "wal")))
	mustOK(t, os.Symlink(filepath.Join(work, "gone"), filepath.Join(dd, "spaces", "space-b", "wal")))
	r = e.run("backup", "--data-dir", dd, "--space", "space-b")
	if r.code == 0 || !strings.Contains(r.stderr, filepath.Join(dd, "spaces", "space-b", "wal")) {
		t.Errorf("backup of a space whose wal/ points to nothing: exit %d\n%s", r.code, r.stderr)
	}
}

// backupThenArchive has engram-sim write one space sp into dd, calls
// prepare (if any), backs the space up, has engram-sim write as much again
// and archives the WAL: the archive then reaches past the snapshot.
func (e *env) backupThenArchive(dd, sp, seed string, prepare func()) {
	e.t.Helper()
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "2000", "--segment-size", "32KiB", "--dim", "8", "--seed", seed)
	if prepare != nil {
		prepare()
	}
	e.mustRun("backup", "--data-dir", dd, "--space", sp)
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "2000", "--seed", seed)
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
}

// craftSymlinkWALSnapshot writes a validly signed snapshot of space sp
// whose spaces/<sp>/wal is a symlink to linkTarget, with the WAL positions
// of the space's latest snapshot: what an attacker who can sign (or a
// backup made by an older memento) could hand to a restore. It goes
// through the ordinary backup, whose Redirect reads the entry from a
// symlink made for the purpose.
func (e *env) craftSymlinkWALSnapshot(t *testing.T, dd, sp, linkTarget string) *repo.Snapshot {
	t.Helper()
	ctx := context.Background()
	r := e.openRepo(t)
	defer r.Close()
	parent, err := r.LatestSnapshot(ctx, sp)
	mustOK(t, err)
	if parent.Engram == nil {
		t.Fatal("the space's latest snapshot records no WAL positions")
	}
	link := filepath.Join(t.TempDir(), "wal")
	mustOK(t, os.Symlink(linkTarget, link))
	info := *parent.Engram
	sn, err := backup.Backup(ctx, r, backup.BackupOptions{Space: sp, DataDir: dd, Host: "crafted", Engram: &info,
		Redirect: func(rel string) string {
			if rel == "spaces/"+sp+"/wal" {
				return link
			}
			return ""
		}})
	mustOK(t, err)
	return sn
}

// TestCraftedSymlinkWALSnapshot (issue 19 item 5): a signed snapshot whose
// spaces/<id>/wal is a symlink to the live WAL. `restore --at T --target
// ELSEWHERE`, a plain restore of it, and listing at/<T>/ on the mount all
// fail with exit 5 (the mount: an error and a log line) naming the path, and
// leave the live data dir byte-identical (before the fix they cut its newest
// segment and deleted the ones after T) and nothing in the target.
func TestCraftedSymlinkWALSnapshot(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	live := filepath.Join(work, "live")
	const sp = "space-a"
	e.backupThenArchive(live, sp, "21", nil)
	sn := e.craftSymlinkWALSnapshot(t, live, sp, filepath.Join(live, "spaces", sp, "wal"))
	end := e.simTruth(live, sp)
	mid := e.simTruth(live, sp, "--to-seq", strconv.FormatUint((sn.Engram.WALEnd.Seq+end.Sequence)/2, 10))
	at := strconv.FormatInt(mid.TimestampNS, 10)

	before := repoTreeDigest(t, live)
	const why = "spaces/" + sp + "/wal is a symlink to \""
	target := filepath.Join(work, "elsewhere")
	r := e.wantFail(5, why+filepath.Join(live, "spaces", sp, "wal")+"\" where a directory must be", "restore", "--space", sp, "--at", at, "--target", target)
	if !strings.Contains(r.stderr, "snapshot "+sn.ShortID()) {
		t.Errorf("the error does not name snapshot %s: %s", sn.ShortID(), r.stderr)
	}
	sameDigest(t, "live data dir after restore --at of the crafted snapshot", before, repoTreeDigest(t, live))
	assertNothingRestored(t, target)
	e.wantFail(5, why, "restore", "--space", sp, "--latest", "--target", target)
	sameDigest(t, "live data dir after a plain restore of the crafted snapshot", before, repoTreeDigest(t, live))
	assertNothingRestored(t, target)

	m := e.startMount(t)
	if es, err := os.ReadDir(filepath.Join(m.mp, "spaces", sp, "at", at)); err == nil {
		t.Errorf("at/%s of the crafted snapshot lists %v", at, es)
	}
	sameDigest(t, "live data dir after listing at/<T> on the mount", before, repoTreeDigest(t, live))
	m.stop(syscall.SIGINT, 30*time.Second)
	if !strings.Contains(m.stderr.String(), "corrupt=true") || !strings.Contains(m.stderr.String(), strings.TrimSuffix(why, "\"")) {
		t.Errorf("the mount's log does not say why at/%s failed:\n%s", at, m.stderr)
	}
	sameDigest(t, "live data dir after the unmount", before, repoTreeDigest(t, live))
}

// TestPrivateSpaceRestoreAtAndMount (issue 19 item 11): a 0700 space
// directory stays 0700 through `restore --at` as through a plain restore;
// on a mount with --allow-other, the at-view's generated files of that
// space are owner-only (memories.jsonl and state.json 0400), so another
// user cannot read them, and they stat with their real size right after a
// listing, before anything read them.
func TestPrivateSpaceRestoreAtAndMount(t *testing.T) {
	e := newEnv(t)
	work := t.TempDir()
	dd := filepath.Join(work, "dd")
	const sp = "space-a"
	e.backupThenArchive(dd, sp, "8", func() { mustOK(t, os.Chmod(filepath.Join(dd, "spaces", sp), 0o700)) })
	at := strconv.FormatInt(e.simTruth(dd, sp).TimestampNS, 10)

	for _, args := range [][]string{{"--at", at}, {"--latest"}} {
		dst := filepath.Join(t.TempDir(), "r")
		e.mustRun(append([]string{"restore", "--space", sp, "--target", dst}, args...)...)
		if fi, err := os.Stat(filepath.Join(dst, "spaces", sp)); err != nil || fi.Mode() != os.ModeDir|0o700 {
			t.Errorf("restore %v: space dir %v (%v), want drwx------", args, fi.Mode(), err)
		}
	}

	m := e.startMount(t, "--allow-other")
	view := filepath.Join(m.mp, "spaces", sp, "at", at)
	if _, err := os.ReadDir(view); err != nil {
		t.Fatalf("at/%s: %v\n%s", at, err, m.stderr)
	}
	for _, name := range []string{fusefs.MemoriesFile, fusefs.StateFile} {
		p := filepath.Join(view, name)
		fi, err := os.Stat(p) // before any read: the listing gave no placeholder
		mustOK(t, err)
		b, err := os.ReadFile(p)
		mustOK(t, err)
		if fi.Mode() != 0o400 || fi.Size() != int64(len(b)) || len(b) == 0 {
			t.Errorf("%s: mode %v size %d before the first read, %d bytes read; want -r-------- and the real size", name, fi.Mode(), fi.Size(), len(b))
		}
	}
	if fi, err := os.Stat(filepath.Join(view, "spaces", sp)); err != nil || fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("at-view space dir %v (%v), want drwx------", fi.Mode(), err)
	}
	if os.Geteuid() == 0 {
		// Another user reaches the mount (the mount point's parents are
		// opened up for it) and reads the README, not the space's state.
		for d := filepath.Dir(m.mp); d != filepath.Dir(filepath.Dir(filepath.Dir(m.mp))); d = filepath.Dir(d) {
			mustOK(t, os.Chmod(d, 0o755))
		}
		asNobody := func(p string) error {
			cmd := exec.Command("cat", p)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				return errors.New(strings.TrimSpace(string(out)))
			}
			return nil
		}
		if err := asNobody(filepath.Join(m.mp, "spaces", sp, "at", "README")); err != nil {
			t.Fatalf("another user cannot read at/README, so the test proves nothing: %v", err)
		}
		for _, name := range []string{fusefs.MemoriesFile, fusefs.StateFile} {
			if err := asNobody(filepath.Join(view, name)); err == nil || !strings.Contains(err.Error(), "Permission denied") {
				t.Errorf("another user reading a 0700 space's %s: %v, want Permission denied", name, err)
			}
		}
	}
	m.stop(syscall.SIGINT, 30*time.Second)
}
