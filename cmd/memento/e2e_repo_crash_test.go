package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EKillDuringBackup kills `memento backup` with SIGKILL once it has
// written its first pack, then checks that the repository it leaves behind is
// fine: no snapshot appeared, the next backup succeeds (reusing what the
// killed one uploaded is allowed, required is only correctness), its restore
// is byte-exact, the dead process's lock is stale and removable, and `index
// rebuild` works and gives the same restore.
func TestE2EKillDuringBackup(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	size := int64(300 << 20)
	if testing.Short() {
		size = 120 << 20
	}
	writeRandomTree(t, src, size, 1)
	want := repoTreeDigest(t, src)

	cmd := exec.Command(mementoBin, "backup", src)
	cmd.Env = e.environ()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for countFiles(t, filepath.Join(e.repo, "data")) == 0 {
		select {
		case err := <-exited:
			t.Fatalf("backup ended (%v) before it wrote a pack; stderr: %s", err, stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("backup wrote no pack in 2 minutes")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("backup was not killed mid-way (it finished first: make the data larger): %v", err)
	}
	packsLeft := countFiles(t, filepath.Join(e.repo, "data"))
	t.Logf("killed after %d packs", packsLeft)

	// No dangling snapshot: the manifest is the last thing a backup writes.
	if ids := e.snapshotIDs(); len(ids) != 0 {
		t.Fatalf("snapshots after the kill: %v", ids)
	}
	if n := countFiles(t, filepath.Join(e.repo, "snapshots")); n != 0 {
		t.Fatalf("%d snapshot files after the kill", n)
	}

	// The next backup works despite the dead process's lock and partial files.
	out := e.mustRun("backup", src)
	if !strings.Contains(out, "snapshot ") || !strings.Contains(out, " saved") {
		t.Fatalf("backup output %q", out)
	}
	ids := e.snapshotIDs()
	if len(ids) != 1 {
		t.Fatalf("snapshots after the second backup: %v", ids)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	e.mustRun("restore", ids[0], "--target", dst)
	sameDigest(t, "restore after the kill", want, repoTreeDigest(t, inSnapshot(t, dst, src)))

	// The killed process's lock is stale (its pid is gone) and removable.
	var unlocked struct{ Removed int }
	if err := json.Unmarshal([]byte(e.mustRun("unlock", "--json")), &unlocked); err != nil || unlocked.Removed != 1 {
		t.Errorf("unlock removed %d locks (%v), want the killed backup's 1", unlocked.Removed, err)
	}

	// index rebuild from the packs (the killed run's included) gives the same restore.
	if err := os.RemoveAll(e.cache); err != nil {
		t.Fatal(err)
	}
	out = e.mustRun("index", "rebuild")
	if !strings.Contains(out, "index rebuilt from") || !strings.Contains(out, ", 1 snapshot\n") {
		t.Fatalf("index rebuild output %q", out)
	}
	dst2 := filepath.Join(t.TempDir(), "dst2")
	e.mustRun("restore", "latest", "--target", dst2)
	sameDigest(t, "restore after index rebuild", want, repoTreeDigest(t, inSnapshot(t, dst2, src)))
}

// TestE2ETwoBackupsAtOnce runs two `memento backup` processes into one
// repository at the same time, of the same tree: both succeed, both
// snapshots restore exactly.
func TestE2ETwoBackupsAtOnce(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeRandomTree(t, src, 40<<20, 2)
	want := repoTreeDigest(t, src)

	cmds := make([]*exec.Cmd, 2)
	outs := make([]*bytes.Buffer, 2)
	for i := range cmds {
		cmds[i] = exec.Command(mementoBin, "backup", "--json", src)
		cmds[i].Env = e.environ()
		outs[i] = &bytes.Buffer{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("backup %d: %v\n%s", i, err, outs[i])
		}
	}
	ids := e.snapshotIDs()
	if len(ids) != 2 {
		t.Fatalf("%d snapshots after two backups: %v", len(ids), ids)
	}
	for _, id := range ids {
		dst := filepath.Join(t.TempDir(), "dst")
		e.mustRun("restore", id, "--target", dst)
		sameDigest(t, "snapshot "+id[:8], want, repoTreeDigest(t, inSnapshot(t, dst, src)))
	}
	if out := e.mustRun("unlock"); !strings.Contains(out, "removed 0 locks") {
		t.Errorf("locks left after both backups ended: %q", out)
	}
}
