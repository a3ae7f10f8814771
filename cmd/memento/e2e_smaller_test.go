package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWALArchiveFullDisk: an archive run that cannot write its packs prints
// no "segments updated" for work it did not save, and exits 1.
func TestWALArchiveFullDisk(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	e := &env{t: t, repo: filepath.Join(mnt, "repo"), cache: filepath.Join(t.TempDir(), "cache"), password: "correct horse"}
	e.mustRun("init")
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "3000", "--segment-size", "64KiB", "--dim", "16", "--seed", "3")
	r := e.wantFail(exitFailure, "no space left on device", "wal", "archive", "--data-dir", dd, "--all")
	if strings.Contains(r.stdout, " updated, ") {
		t.Fatalf("a run that saved nothing reports progress:\n%s", r.stdout)
	}
}

// TestWALVerifyMalformedSegmentName: a wal-*.log file whose name is not a
// segment name is damage (exit 5) named in one line, not a failure (exit 1).
func TestWALVerifyMalformedSegmentName(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "300", "--dim", "16", "--seed", "3")
	bad := filepath.Join(dd, "spaces", "space-a", "wal", "wal-00000000000000XY.log")
	if err := os.WriteFile(bad, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.wantFail(exitCorrupt, "wal-00000000000000XY.log", "wal", "verify", "--data-dir", dd, "--space", "space-a")
}

// TestDamagedKeyFileExit5: a damaged key file is exit 5 naming the file, not
// "wrong password" (exit 4).
func TestDamagedKeyFileExit5(t *testing.T) {
	e := newEnv(t)
	keys, err := filepath.Glob(filepath.Join(e.repo, "keys", "*"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("key files %v, %v", keys, err)
	}
	b, err := os.ReadFile(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(keys[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.wantFail(exitCorrupt, filepath.Base(keys[0]), "snapshots")
}

// TestPasswordFileMode: like ssh with private keys, a password file other
// users can read is refused (exit 2, one line); one its group can read is
// used with a one-line warning; 0600 is used silently.
func TestPasswordFileMode(t *testing.T) {
	e := newEnv(t)
	pf := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pf, []byte(e.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(mode os.FileMode) result {
		t.Helper()
		if err := os.Chmod(pf, mode); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(mementoBin, "--password-file", pf, "snapshots")
		cmd.Env = e.environWithoutPassword()
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		_ = cmd.Run()
		return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	}
	if r := run(0o600); r.code != 0 || strings.Contains(r.stderr, pf) {
		t.Fatalf("mode 0600: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(0o640); r.code != 0 || strings.Count(r.stderr, pf) != 1 || !strings.Contains(r.stderr, "accessible by its group") {
		t.Fatalf("mode 0640: exit %d, want 0 and one warning line naming the file; stderr %q", r.code, r.stderr)
	}
	r := run(0o644)
	if r.code != exitUsage || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "other users can read or change it") {
		t.Fatalf("mode 0644: exit %d, want %d and one line; stderr %q", r.code, exitUsage, r.stderr)
	}
}

// TestWALWatchSignalDuringStartup: SIGTERM while `wal watch` is still
// starting (here: reading its password from a FIFO, before it has opened the
// repository) stops it cleanly with exit 0, as documented, not 130.
func TestWALWatchSignalDuringStartup(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "100", "--dim", "16", "--seed", "3")
	fifo := filepath.Join(t.TempDir(), "password")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mementoBin, "--password-file", fifo, "wal", "watch", "--data-dir", dd, "--all", "--interval", "1h")
	cmd.Env = e.environWithoutPassword()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A FIFO opens for writing without blocking only once a reader has it
	// open: then the watch is blocked reading its password, signal handlers
	// installed, repository not yet opened.
	var w *os.File
	for deadline := time.Now().Add(time.Minute); ; {
		fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			w = os.NewFile(uintptr(fd), fifo)
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("wal watch never opened its password file: %v\n%s", err, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _ = w.WriteString(e.password + "\n")
	w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wal watch signalled during start-up: %v (want exit 0)\n%s", err, out.String())
	}
}

// environWithoutPassword is the env's environment without MEMENTO_PASSWORD,
// which would take precedence over --password-file.
func (e *env) environWithoutPassword() []string {
	var env []string
	for _, kv := range e.environ() {
		if !strings.HasPrefix(kv, "MEMENTO_PASSWORD=") {
			env = append(env, kv)
		}
	}
	return env
}
