package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EBackupAllTakesOneLock: `backup --all` of three spaces takes one
// repository lock for the command, not one per space (each costs an
// fsynced lock file, its directory's fsyncs, a read of the other locks and
// a removal: docs/benchmarks.md, "Issue 18, session 7"), and still saves
// and audits one snapshot per space.
func TestE2EBackupAllTakesOneLock(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "engram")
	e.sim("generate", "--dir", dd, "--size", "3MB", "--spaces", "3", "--segment-size", "256KiB", "--seed", "18")
	e.mustRun("backup", "--data-dir", dd, "--all")
	r := e.run("backup", "--data-dir", dd, "--all", "-v")
	if r.code != 0 {
		t.Fatalf("unchanged backup --all: exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "repository locked"); n != 1 {
		t.Fatalf("unchanged backup --all of 3 spaces took %d locks, want 1:\n%s", n, r.stderr)
	}
	if n := strings.Count(r.stdout, " saved: space space-"); n != 3 {
		t.Fatalf("%d snapshots saved, want 3:\n%s", n, r.stdout)
	}
	if n := strings.Count(r.stdout, "(0 B new, 0 B stored"); n != 3 {
		t.Fatalf("%d unchanged snapshots, want 3:\n%s", n, r.stdout)
	}
	if n := countFiles(t, filepath.Join(e.repo, "locks")); n != 0 {
		t.Fatalf("%d locks left in the repository", n)
	}
	if n := countFiles(t, filepath.Join(e.repo, "logs")); n != 6 {
		t.Fatalf("%d audit records after two backups of 3 spaces, want 6", n)
	}
}
