package main

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// garble overwrites every file below dir with random bytes of its size:
// ransomware encrypting a data dir in place.
func garble(t *testing.T, dir string) {
	t.Helper()
	r := rand.New(rand.NewPCG(16, 5))
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b := make([]byte, fi.Size())
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return os.WriteFile(p, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Scenario 5 of issue 16 on a local repository, with both engram-sim
// profiles: normal days of changes back up as usual; once the data dir is
// encrypted in place the next backup is refused before it stores anything
// (one line naming the space and files, exit 5), so the good history stays
// the latest, and the last verified snapshot restores byte for byte and is
// kept by forget (the default profile; wal-heavy checks the refusal). --allow-tier-rewrite saves the garbled state anyway (its
// WAL marks it damaged), and forget still keeps the verified one.
func TestE2ERansomwareGarbledDataDir(t *testing.T) {
	for _, profile := range []string{"default", "wal-heavy"} {
		t.Run(profile, func(t *testing.T) {
			e := newEnv(t)
			dd := filepath.Join(t.TempDir(), "data")
			e.sim("generate", "--dir", dd, "--size", "3MB", "--spaces", "1", "--segment-size", "256KiB", "--profile", profile, "--seed", "16")
			e.mustRun("backup", "--data-dir", dd, "--all")
			days := []string{"1", "2"}
			if profile != "default" {
				days = days[:1]
			}
			for _, day := range days {
				e.sim("mutate", "--dir", dd, "--profile", profile, "--seed", day)
				e.mustRun("backup", "--data-dir", dd, "--all") // a normal day is not refused
			}
			good := repoTreeDigest(t, filepath.Join(dd, "spaces", "space-a"))
			e.mustRun("verify", "--space", "space-a", "--latest", "--level", "L2")
			before := e.snapshotIDs()
			verified := before[len(before)-1]

			garble(t, filepath.Join(dd, "spaces"))
			r := e.wantFail(exitCorrupt, "space space-a: backup refused: ", "backup", "--data-dir", dd, "--all")
			for _, want := range []string{"tier files no longer look like Engram's: spaces/space-a/", "(ransomware)", "--allow-tier-rewrite", "Nothing was stored"} {
				if !strings.Contains(r.stderr, want) {
					t.Fatalf("refusal does not say %q:\n%s", want, r.stderr)
				}
			}
			if after := e.snapshotIDs(); !slices.Equal(after, before) {
				t.Fatalf("a refused backup changed the snapshots: %v -> %v", before, after)
			}
			e.restoresSpaceDigest(verified, "space-a", good)
			if profile != "default" {
				return // the rest does not depend on the profile
			}

			// Forced through (with a checkpoint that parses, which backup
			// needs): saved and marked damaged, the WAL being garbage too; a
			// --keep-last 1 keeps the verified snapshot all the same.
			if err := os.WriteFile(filepath.Join(dd, "spaces", "space-a", "checkpoint.json"), []byte(`{"sequence":0,"timestamp_ns":0}`), 0o644); err != nil {
				t.Fatal(err)
			}
			e.wantFail(exitCorrupt, "marked damaged", "backup", "--data-dir", dd, "--all", "--allow-tier-rewrite")
			out := e.mustRun("forget", "--space", "space-a", "--keep-last", "1")
			if !strings.Contains(out, verified[:8]) {
				t.Fatalf("forget output does not mention the verified snapshot %s:\n%s", verified[:8], out)
			}
			if ids := e.snapshotIDs(); !slices.Contains(ids, verified) {
				t.Fatalf("forget removed the verified snapshot %s:\n%s", verified[:8], out)
			}
			e.restoresSpaceDigest(verified, "space-a", good)
		})
	}
}

// restoresSpaceDigest restores snapshot id and compares its space with want.
func (e *env) restoresSpaceDigest(id, space string, want map[string]string) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "restored")
	e.mustRun("restore", id, "--target", dst)
	sameDigest(e.t, "restored "+space, want, repoTreeDigest(e.t, filepath.Join(dst, "spaces", space)))
}
