package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	if strings.Contains(r.stdout, "segments updated") {
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
