package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

// TestE2EBackupAllCommitsItsCatalogOnce: the snapshots of `backup --all`
// go into the local catalog in one write transaction of the cache file for
// the command (Repository.DeferCatalog), not one per space: each commit is
// two fdatasyncs, and held the other spaces' reads of the cache meanwhile
// (docs/benchmarks.md, "Issue 18, session 24: the unchanged re-backup of 16
// spaces"). bbolt's transaction id, in the file's meta page, counts the
// commits. The catalog still lists every snapshot, and the next backup
// takes them as parents.
func TestE2EBackupAllCommitsItsCatalogOnce(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "engram")
	e.sim("generate", "--dir", dd, "--size", "3MB", "--spaces", "3", "--segment-size", "256KiB", "--seed", "24")
	e.mustRun("backup", "--data-dir", dd, "--all")
	files, err := filepath.Glob(filepath.Join(e.cache, "*", "index.db"))
	if err != nil || len(files) != 1 {
		t.Fatalf("cache files %v, %v", files, err)
	}
	commits := func() int {
		db, err := bolt.Open(files[0], 0o600, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var id int
		if err := db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	before := commits()
	out := e.mustRun("backup", "--data-dir", dd, "--all")
	if n := strings.Count(out, "(0 B new, 0 B stored"); n != 3 {
		t.Fatalf("%d unchanged snapshots, want 3:\n%s", n, out)
	}
	if n := commits() - before; n != 1 {
		t.Fatalf("unchanged backup --all of 3 spaces committed to the cache %d times, want 1", n)
	}
	list := e.mustRun("snapshots")
	for _, sp := range []string{"space-a", "space-b", "space-c"} {
		if n := strings.Count(list, sp); n != 2 {
			t.Fatalf("the catalog lists %d snapshots of %s, want 2:\n%s", n, sp, list)
		}
	}
	// The next backup finds the snapshots just put as its parents: every
	// file unchanged.
	if out := e.mustRun("backup", "--data-dir", dd, "--all"); strings.Count(out, "(0 B new, 0 B stored") != 3 {
		t.Fatalf("third backup:\n%s", out)
	}
}
