package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireRootTool skips a test that needs root and the named programs.
func requireRootTool(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("mounts or namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s: %v", tool, err)
		}
	}
}

// waitForLock polls until the repository has a lock file.
func (e *env) waitForLock(what func() string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for countFiles(e.t, filepath.Join(e.repo, "locks")) == 0 {
		if time.Now().After(deadline) {
			e.t.Fatalf("no lock was taken: %s", what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unlockJSON is `memento unlock --json`.
type unlockJSON struct {
	Removed int `json:"removed"`
	Kept    int `json:"kept"`
	Locks   []struct {
		ID      string `json:"id"`
		Host    string `json:"host"`
		PID     int    `json:"pid"`
		Command string `json:"command"`
		Stale   bool   `json:"stale"`
		Removed bool   `json:"removed"`
		Reason  string `json:"reason"`
	} `json:"locks"`
}

func (e *env) unlock(args ...string) unlockJSON {
	e.t.Helper()
	var u unlockJSON
	out := e.mustRun(append([]string{"unlock", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		e.t.Fatalf("unlock --json: %v\n%s", err, out)
	}
	return u
}

// TestE2ELockAcrossPIDNamespace is the container case: `wal watch`
// runs in its own PID namespace (unshare --pid, same host name, as with
// --uts=host or hostNetwork) and holds a shared lock; its pid is not alive
// in the host's namespace. prune on the host must still refuse (exit 6), and
// say how to remove the lock if its process is gone; plain unlock keeps it
// and says why; unlock --remove ID removes it.
func TestE2ELockAcrossPIDNamespace(t *testing.T) {
	host, _ := os.Hostname()
	testForeignLock(t, host, "another boot or PID namespace")
}

// TestE2ELockOfAnotherHost: the same with a holder on another host (its own
// UTS namespace and host name). The lock error recommends what works:
// plain unlock keeps the live lock (saying why), unlock --remove ID removes it.
func TestE2ELockOfAnotherHost(t *testing.T) {
	testForeignLock(t, "memento-other-host", "on host memento-other-host")
}

// testForeignLock runs `wal watch` in new PID (and, for another host name,
// UTS) namespaces and checks prune and unlock against its lock.
func testForeignLock(t *testing.T, holderHost, reason string) {
	requireRootTool(t, "unshare")
	e := newEnv(t)
	dd := e.simData("5")
	e.mustRun("backup", "--data-dir", dd, "--all")
	host, _ := os.Hostname()

	// The watcher's pid inside the namespace is the first one above burn;
	// burn is chosen so that those pids are free in the host's namespace.
	burn := 0
	for n := 400; n < 1<<22; n++ {
		free := true
		for k := n; k <= n+8 && free; k++ {
			_, err := os.Stat(fmt.Sprintf("/proc/%d", k))
			free = errors.Is(err, os.ErrNotExist)
		}
		if free {
			burn = n
			break
		}
	}
	script := fmt.Sprintf(`while :; do /bin/true & p=$!; wait $p; [ "$p" -ge %d ] && break; done; "$0" wal watch --data-dir "$1" --all --interval 200ms`, burn)
	args := []string{"--pid", "--fork", "--mount-proc", "--kill-child"}
	if holderHost != host {
		args = append(args, "--uts")
		script = "hostname " + holderHost + " && " + script
	}
	ns := exec.Command("unshare", append(args, "sh", "-c", script, mementoBin, dd)...)
	ns.Env = e.environ()
	nsOut, err := os.Create(filepath.Join(t.TempDir(), "watch.log"))
	if err != nil {
		t.Fatal(err)
	}
	ns.Stdout, ns.Stderr = nsOut, nsOut
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = ns.Process.Signal(syscall.SIGKILL) // --kill-child takes the namespace with it
			_ = ns.Wait()
		}
	}
	t.Cleanup(stop)
	e.waitForLock(func() string { b, _ := os.ReadFile(nsOut.Name()); return string(b) })

	r := e.wantFail(exitLocked, "shared lock of 'wal watch' by "+holderHost+" pid ", "prune")
	if !strings.Contains(r.stderr, reason) || !strings.Contains(r.stderr, "run 'memento unlock --remove ") {
		t.Fatalf("prune does not say how to clear the foreign lock: %s", r.stderr)
	}
	u := e.unlock()
	if u.Removed != 0 || u.Kept != 1 || len(u.Locks) != 1 {
		t.Fatalf("plain unlock beside the foreign live lock: %+v", u)
	}
	l := u.Locks[0]
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", l.PID)); !errors.Is(err, os.ErrNotExist) {
		t.Skipf("pid %d of the namespace is alive on the host too; the test needs it not to be", l.PID)
	}
	if l.Host != holderHost || l.Command != "wal watch" || l.Stale || !strings.Contains(l.Reason, reason) {
		t.Fatalf("unlock's view of the foreign lock: %+v", l)
	}
	if out := e.mustRun("unlock"); !strings.Contains(out, "kept: lock "+l.ID+" of 'wal watch' by "+holderHost) {
		t.Fatalf("unlock does not say what it kept and why:\n%s", out)
	}
	// Its process gone, the lock goes by the ID the messages give (plain
	// unlock would keep it for 30 minutes: its pid cannot be checked).
	stop()
	u = e.unlock("--remove", l.ID)
	if u.Removed != 1 || u.Kept != 0 {
		t.Fatalf("unlock --remove %s: %+v", l.ID, u)
	}
	e.mustRun("prune")
}

// bindReadOnly mounts dir read-only at a new path (mount --bind, then
// remount,ro,bind) and returns it; the test's cleanup unmounts it.
func bindReadOnly(t *testing.T, dir string) string {
	t.Helper()
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "--bind", dir, ro).CombinedOutput(); err != nil {
		t.Skipf("mount --bind: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", ro).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", ro).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	return ro
}

// TestE2EReadOnlyRepository: on a read-only bind mount of the repository,
// the commands that only read work: without a lock, with one line saying
// so, or silently with --no-lock. Writing commands fail with one line, and
// refuse --no-lock.
func TestE2EReadOnlyRepository(t *testing.T) {
	requireRootTool(t, "mount", "umount")
	e := newEnv(t)
	dd := e.simData("6")
	e.mustRun("backup", "--data-dir", dd, "--all")
	ro := e.with(bindReadOnly(t, e.repo))

	const roLine = "is read-only: restore runs without a lock"
	for _, args := range [][]string{
		{"snapshots"},
		{"ls", "latest"},
		{"info"},
		{"stats"},
		{"pitr", "ranges", "--space", "space-a"},
		{"check"},
		{"verify", "--all", "--level", "L2"},
		{"restore", "--space", "space-a", "--latest", "--target", filepath.Join(t.TempDir(), "dst")},
	} {
		r := ro.run(args...)
		if r.code != 0 {
			t.Fatalf("memento %s on a read-only repository: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		if args[0] == "restore" && strings.Count(r.stderr, roLine) != 1 {
			t.Fatalf("restore does not say once that it runs without a lock:\n%s", r.stderr)
		}
		if strings.Contains(r.stderr, "audit") {
			t.Fatalf("memento %s tried to write the audit trail of a read-only repository:\n%s", strings.Join(args, " "), r.stderr)
		}
	}
	// A point-in-time restore too.
	rg := ro.ranges("space-a")
	if len(rg.Ranges) == 0 {
		t.Fatal("no recoverable range")
	}
	seq := strconv.FormatUint(rg.Ranges[0].ToSeq, 10)
	if r := ro.run("restore", "--space", "space-a", "--to-seq", seq, "--target", filepath.Join(t.TempDir(), "pitr")); r.code != 0 ||
		!strings.Contains(r.stderr, "is read-only: restore --at runs without a lock") {
		t.Fatalf("restore --to-seq %s on a read-only repository: exit %d\n%s", seq, r.code, r.stderr)
	}
	r := ro.run("--no-lock", "restore", "--space", "space-b", "--latest", "--target", filepath.Join(t.TempDir(), "dst"))
	if r.code != 0 || strings.Contains(r.stderr, "without a lock") {
		t.Fatalf("restore --no-lock: exit %d\n%s", r.code, r.stderr)
	}
	// The mount serves the read-only repository.
	m := ro.startMount(t)
	if ents, err := os.ReadDir(filepath.Join(m.mp, "snapshots")); err != nil || len(ents) == 0 {
		t.Fatalf("mount of a read-only repository: %v, %d entries", err, len(ents))
	}

	ro.wantFail(exitFailure, "read-only file system", "backup", "--data-dir", dd, "--all")
	ro.wantFail(exitUsage, "--no-lock", "--no-lock", "prune")
	e.wantFail(exitUsage, "--no-lock", "--no-lock", "backup", "--data-dir", dd, "--all")
	if n := countFiles(t, filepath.Join(e.repo, "locks")); n != 0 {
		t.Fatalf("%d locks in the repository", n)
	}
}

// fillFileSystem writes a file in dir until the file system is full and
// returns its path.
func fillFileSystem(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	return p
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestE2EFullRepository: on a full file system (a tmpfs with size=), forget
// and prune can still take their lock (in the space the repository keeps in
// reserve) and free space; prune then only deletes packs nothing uses. A
// backup fails with one line. Once there is room, the reserve is made again.
func TestE2EFullRepository(t *testing.T) {
	requireRootTool(t, "mount", "umount")
	fsDir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(fsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", fsDir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", fsDir).Run() })
	e := &env{t: t, repo: filepath.Join(fsDir, "repo"), cache: filepath.Join(t.TempDir(), "cache"), password: "correct horse"}
	e.mustRun("init")
	// Three states of ONE database (one identity): forget --keep-last 1 then
	// leaves one snapshot per space and prune has garbage to free. (Data
	// dirs with identities of their own would be three databases, each
	// keeping its one snapshot.)
	var dds []string
	for i, seed := range []string{"21", "22", "23"} {
		dd := e.simData(seed)
		if i == 0 {
			e.mustRun("identity", "init", "--data-dir", dd)
		} else {
			copyIdentity(t, dds[0], dd)
		}
		e.mustRun("backup", "--data-dir", dd, "--all")
		dds = append(dds, dd)
	}
	reserve := filepath.Join(e.repo, ".tmp-reserve")
	if fi, err := os.Stat(reserve); err != nil || fi.Size() != 4<<20 {
		t.Fatalf("the repository keeps no 4 MiB reserve: %v", err)
	}
	filler := fillFileSystem(t, fsDir)
	full := freeBytes(t, fsDir)

	e.wantFail(exitFailure, "no space left on device", "backup", "--data-dir", dds[0], "--all")
	r := e.run("forget", "--all", "--keep-last", "1")
	if r.code != 0 || !strings.Contains(r.stderr, "is full: released its 4096 KiB reserve so that forget can take its lock") {
		t.Fatalf("forget on a full repository: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = e.run("prune")
	if r.code != 0 || !strings.Contains(r.stderr, "memento: warning: the repository is full: this prune only deleted packs nothing uses") {
		t.Fatalf("prune on a full repository: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if freed := freeBytes(t, fsDir) - full; freed < 4<<20 {
		t.Fatalf("prune freed %d bytes", freed)
	}
	e.mustRun("check", "--read-data")
	for _, sp := range []string{"space-a", "space-b"} {
		e.mustRun("restore", "--space", sp, "--latest", "--target", filepath.Join(t.TempDir(), "dst"))
	}
	// Room again: the next lock makes the reserve, and prune repacks.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if r := e.run("prune"); r.code != 0 || strings.Contains(r.stderr, "is full") {
		t.Fatalf("prune with room: exit %d\n%s", r.code, r.stderr)
	}
	if fi, err := os.Stat(reserve); err != nil || fi.Size() != 4<<20 {
		t.Fatalf("the reserve was not made again: %v", err)
	}
}

// copyIdentity makes data dir dst a copy of src's database: same identity
// (DIR/.memento/identity.json).
func copyIdentity(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(src, ".memento", "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dst, ".memento"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, ".memento", "identity.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
