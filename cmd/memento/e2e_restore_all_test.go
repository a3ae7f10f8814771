package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestRestoreAllSharedGate restores a data dir of five spaces, more than
// spacesRestoredAtOnce, with `restore --all --latest`: every space's files go
// through one restore.FileGate (largest waiting file first, issue 18 session
// 9), and every restored space must be byte for byte the backed-up one, with
// one result per space.
func TestRestoreAllSharedGate(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "dd")
	e.sim("generate", "--dir", dd, "--size", "24MiB", "--spaces", "5", "--dim", "16", "--segment-size", "2MiB", "--seed", "3")
	e.mustRun("backup", "--data-dir", dd, "--all")
	dst := filepath.Join(t.TempDir(), "restored")
	var out []restoreJSON
	if err := json.Unmarshal([]byte(e.mustRun("restore", "--all", "--latest", "--target", dst, "--json")), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 5 {
		t.Fatalf("%d restore results, want 5", len(out))
	}
	for _, r := range out {
		if r.Result == nil || r.Result.Files == 0 {
			t.Fatalf("restore result %+v: no files", r)
		}
	}
	sameTree(t, filepath.Join(dd, "spaces"), filepath.Join(dst, "spaces"))
}
