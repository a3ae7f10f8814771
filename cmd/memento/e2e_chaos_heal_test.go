package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"memento/walreplay"
)

// chaosHealSeed is the seed of deletion trial 0; trial i has seed
// chaosHealSeed+i.
const chaosHealSeed = 20261205100

// TestChaosDeleteHealFromReplica deletes random repository objects (packs,
// index files, snapshot manifests, WAL archive objects) of the primary, then
// `check` must fail naming every missing object (a pack or a manifest by its
// ID, the manifest through the audit record of the backup that wrote it; an
// index file by the packs it listed, a WAL run file by its number),
// `memento -r REPLICA replicate --to
// PRIMARY` copies back exactly what the primary lacks, and the primary is
// whole again: every file byte-identical to before, `check --read-data`
// clean, the snapshot list the same. After the last trial every snapshot
// restores to what was backed up and a point-in-time restore equals
// engram-sim's truth.
//
// make test runs 2 trials; MEMENTO_CHAOS_DELETES=N runs N (make
// chaos-delete), MEMENTO_CHAOS_DELETE_REPORT=FILE writes a markdown report.
func TestChaosDeleteHealFromReplica(t *testing.T) {
	trials := chaosTrials(t, "MEMENTO_CHAOS_DELETES", 2)
	base := t.TempDir()
	e := &env{t: t, repo: filepath.Join(base, "repo"), cache: filepath.Join(base, "cache"), password: "correct horse"}
	e.mustRun("init")
	dd := filepath.Join(base, "dd")
	e.sim("generate", "--dir", dd, "--size", "4MB", "--spaces", "2", "--segment-size", "128KiB", "--seed", "11")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	e.sim("mutate", "--dir", dd, "--seed", "1", "--wal-share", "0.4", "--warm-share", "0.2")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	src := filepath.Join(base, "src")
	writeChaosTree(t, src, 20, 7)
	pathID := chaosBackupID(e, src)
	replica, pristineReplica := filepath.Join(base, "replica"), filepath.Join(base, "pristine-replica")
	e.mustRun("replicate", "--to", replica)
	pristine := filepath.Join(base, "pristine")
	copyTreeModes(t, e.repo, pristine)
	copyTreeModes(t, replica, pristineReplica)
	snaps := e.snapshotIDs()

	// The objects a trial may delete, by kind.
	kinds := map[string][]string{}
	for _, dir := range []string{"data", "index", "snapshots", "wal"} {
		_ = filepath.WalkDir(filepath.Join(pristine, dir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
				rel, _ := filepath.Rel(pristine, p)
				kinds[dir] = append(kinds[dir], rel)
			}
			return nil
		})
		if len(kinds[dir]) == 0 {
			t.Fatalf("the world has no %s/ objects", dir)
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "| trial | deleted | check exit | healed files |\n|---|---|---|---|\n")
	failures := 0
	deleted := map[string]int{}
	for i := 0; i < trials; i++ {
		rng := rand.New(rand.NewPCG(uint64(chaosHealSeed+i), 2))
		// The primary and the replica as they were (the replica's audit
		// trail grows with each run that heals from it).
		for _, d := range []string{e.repo, e.cache, replica} {
			if err := os.RemoveAll(d); err != nil {
				t.Fatal(err)
			}
		}
		copyTreeModes(t, pristine, e.repo)
		copyTreeModes(t, pristineReplica, replica)
		var gone []string
		for n := 1 + rng.IntN(4); len(gone) < n; {
			dirs := []string{"data", "index", "snapshots", "wal"}
			kind := dirs[rng.IntN(len(dirs))]
			obj := kinds[kind][rng.IntN(len(kinds[kind]))]
			if slices.Contains(gone, obj) {
				continue
			}
			if err := os.Remove(filepath.Join(e.repo, obj)); err != nil {
				t.Fatal(err)
			}
			gone = append(gone, obj)
			deleted[kind]++
		}
		slices.Sort(gone)
		fail := func(format string, args ...any) {
			failures++
			t.Errorf("trial %d (deleted %v): %s", i, gone, fmt.Sprintf(format, args...))
		}

		// check fails naming every missing object (a lost manifest by
		// the audit record of the backup that wrote it).
		r := e.run("check")
		if r.code != exitCorrupt {
			fail("check of a repository that lost objects: exit %d, want %d\n%s%s", r.code, exitCorrupt, r.stdout, r.stderr)
		}
		goneKind := func(kind string) bool {
			return slices.ContainsFunc(gone, func(o string) bool { return strings.HasPrefix(o, kind+"/") })
		}
		for _, obj := range gone {
			// A pack and a manifest by their ID; a lost index file by
			// the packs it listed, now in no index file; a lost WAL run
			// file by its number in the space's archive. A pack and its
			// index file lost together: by the blobs they held, now in
			// no pack or not in the index.
			var says []string
			untraceable := false
			switch id := filepath.Base(obj); {
			case strings.HasPrefix(obj, "data/"):
				says = []string{"pack " + id[:8]}
				if goneKind("index") {
					says = append(says, "not in the index", "is in no pack")
					// Unless what used its blobs is gone too: a pack
					// whose index file and whose only users (a
					// snapshot's manifest, WAL archive objects) are all
					// lost leaves nothing that names it, so check
					// cannot know it existed (the lost manifest and WAL
					// objects are named by their own cases). The heal
					// below must still bring it back byte for byte and
					// `check --read-data` pass.
					untraceable = goneKind("snapshots") || goneKind("wal")
				}
			case strings.HasPrefix(obj, "snapshots/"):
				says = []string{"snapshot " + id[:8]}
			case strings.HasPrefix(obj, "index/"):
				says = []string{"not listed in any index file"}
				if goneKind("data") {
					// the packs it listed are gone too: what they held is
					// in no pack now
					says = append(says, "not in the index", "is in no pack")
					// and when what used those blobs is gone as well,
					// nothing is left that names them (see data/ above)
					untraceable = goneKind("snapshots") || goneKind("wal")
				}
			case strings.HasPrefix(obj, "wal/"):
				says = []string{"is missing (deleted or lost)"}
			}
			if !slices.ContainsFunc(says, func(s string) bool { return strings.Contains(r.stdout+r.stderr, s) }) {
				if untraceable {
					t.Logf("trial %d: %s is named by nothing check can read (its index file and its users are gone too)", i, obj)
					continue
				}
				fail("check does not say %q of the missing %s:\n%s%s", says, obj, r.stdout, r.stderr)
			}
		}
		t.Logf("trial %d: deleted %v; check exit %d", i, gone, r.code)

		// Heal from the replica.
		heal := &env{t: t, repo: replica, cache: filepath.Join(base, "replica-cache"), password: e.password}
		out := heal.mustRun("replicate", "--to", e.repo)
		want := ": " + plural(len(gone), "file") + " ("
		if !strings.Contains(out, want) {
			fail("replicate back did not copy exactly the %d missing files: %s", len(gone), out)
		}
		for _, obj := range gone {
			a, err := os.ReadFile(filepath.Join(pristine, obj))
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(e.repo, obj)); err != nil || !bytes.Equal(a, b) {
				fail("%s not healed byte-identically: %v", obj, err)
			}
		}
		if r := e.run("check", "--read-data"); r.code != 0 {
			fail("check --read-data after healing: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if got := e.snapshotIDs(); !slices.Equal(got, snaps) {
			fail("snapshots after healing %v, want %v", got, snaps)
		}
		// replicate's line without its "replicated to <temporary path>: "
		healed := strings.TrimSpace(out)
		if _, rest, ok := strings.Cut(healed, e.repo+": "); ok {
			healed = rest
		}
		fmt.Fprintf(&report, "| %d | %s | %d | %s |\n", i, strings.Join(gone, "<br>"), r.code, healed)
	}

	// The healed primary restores: the path snapshot byte for byte, each
	// space at the end of its WAL equal to engram-sim's truth.
	dst := filepath.Join(t.TempDir(), "dst")
	e.mustRun("restore", pathID, "--target", dst)
	sameDigest(t, "healed path snapshot", repoTreeDigest(t, src), repoTreeDigest(t, inSnapshot(t, dst, src)))
	for _, sp := range []string{"space-a", "space-b"} {
		want := e.simTruth(dd, sp)
		e.pitr(sp, "--at", walreplay.FormatTime(want.TimestampNS), want)
	}
	t.Logf("%d deletion trials (objects deleted by kind: %s), %d failures", trials, countsText(deleted), failures)
	if p := os.Getenv("MEMENTO_CHAOS_DELETE_REPORT"); p != "" {
		head := fmt.Sprintf("## Chaos: random deletion of repository objects, healed from a replica\n\n"+
			"`make chaos-delete` (TestChaosDeleteHealFromReplica, seeds %d+i): %d trials, objects deleted by kind: %s, "+
			"**%d failures**. Each trial: `check` fails (exit 5) and reports every missing object "+
			"(packs and manifests by ID, index files by the packs left unindexed, WAL run files by number), "+
			"`memento -r REPLICA replicate --to PRIMARY` copies back exactly the missing files, byte-identical; "+
			"`check --read-data` clean; same snapshot list. Afterwards the path snapshot restores byte for byte and "+
			"both spaces' PITR restores equal engram-sim truth.\n\n", chaosHealSeed, trials, countsText(deleted), failures)
		if err := os.WriteFile(p, []byte(head+report.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// countsText writes counts by name as "a 1, b 2", names sorted, for a
// chaos report (not Go's map[a:1 b:2]).
func countsText(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// chaosTrials is the number of trials a chaos test runs: the positive
// number in the environment variable name, else def (the smoke case).
func chaosTrials(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}
