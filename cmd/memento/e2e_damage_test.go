package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loseLargestPack deletes the largest of the packs written since before
// (a map from packsOf) and returns its path.
func loseLargestPack(t *testing.T, repo string, before map[string]bool) string {
	t.Helper()
	var victim string
	var size int64
	for p := range packsOf(t, repo) {
		if before[p] {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > size {
			victim, size = p, fi.Size()
		}
	}
	if victim == "" {
		t.Fatal("no new pack to lose")
	}
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	return victim
}

// restoresSpace restores the latest snapshot of space and compares every
// restored file with the data dir's.
func (e *env) restoresSpace(dd, space string) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "restored")
	e.mustRun("restore", "--space", space, "--latest", "--target", dst)
	sameDigest(e.t, "restored "+space, repoTreeDigest(e.t, filepath.Join(dd, "spaces", space)),
		repoTreeDigest(e.t, filepath.Join(dst, "spaces", space)))
}

// TestE2ELostPackThenBackups is issue 19 item 3: after a pack is lost, the
// next backups (plain, and --force) must not deduplicate against it nor reuse
// the parent's content lists that name its chunks: each one is restorable.
func TestE2ELostPackThenBackups(t *testing.T) {
	e := newEnv(t)
	dd := e.simData("19")
	e.mustRun("backup", "--data-dir", dd, "--space", "space-b")
	before := packsOf(t, e.repo)
	e.mustRun("backup", "--data-dir", dd, "--space", "space-a")
	lost := loseLargestPack(t, e.repo, before)

	r := e.run("backup", "--data-dir", dd, "--space", "space-a")
	if r.code != 0 {
		t.Fatalf("backup after losing pack %s: exit %d\n%s%s", filepath.Base(lost), r.code, r.stdout, r.stderr)
	}
	e.restoresSpace(dd, "space-a")
	if !strings.Contains(r.stderr, "packs missing or damaged") || !strings.Contains(r.stderr, filepath.Base(lost)[:8]) {
		t.Fatalf("backup after losing pack %s does not say so:\n%s", filepath.Base(lost), r.stderr)
	}
	e.mustRun("verify", "--space", "space-a", "--latest", "--level", "L2")
	e.mustRun("backup", "--data-dir", dd, "--space", "space-a", "--force")
	e.restoresSpace(dd, "space-a")
	e.mustRun("verify", "--space", "space-a", "--latest", "--level", "L2")
	// The second backup found the lost data stored again: nothing new.
	e.mustRun("backup", "--data-dir", dd, "--space", "space-a")
	e.restoresSpace(dd, "space-a")
	// The lost chunks are stored again under the same IDs, so even the
	// first snapshot restores again; check still names the lost pack.
	r = e.run("check")
	if r.code != exitCorrupt || !strings.Contains(r.stdout, filepath.Base(lost)[:8]+": listed by index file") ||
		!strings.Contains(r.stdout, "(5 intact)") {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestE2ELostPackRepairThenBackup: a data pack is lost while the trees
// that name its chunks survive (they were rewritten into a later pack); after
// check --repair marks the damaged snapshots, a plain backup (whose parent is
// a damaged snapshot with readable trees) must read the unchanged file again
// instead of reusing the parent's chunk list.
func TestE2ELostPackRepairThenBackup(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	writeRandomTree(t, src, 3<<20, 7)
	e.mustRun("backup", src)
	dataPacks := packsOf(t, e.repo)
	// A new file changes every tree above it: the second backup stores the
	// trees again in a new pack, and the files' data stays in the first.
	if err := os.WriteFile(filepath.Join(src, "d00", "new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	for p := range dataPacks {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.run("check", "--repair"); r.code != exitCorrupt || !strings.Contains(r.stdout, "marked damaged") {
		t.Fatalf("check --repair: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.mustRun("backup", src)
	dst := filepath.Join(t.TempDir(), "restored")
	e.mustRun("restore", "latest", "--target", dst)
	sameDigest(t, "restored", repoTreeDigest(t, src), repoTreeDigest(t, filepath.Join(dst, "src")))
	e.mustRun("verify", "latest", "--level", "L2")
}
