package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestE2ERetagKeepsVerification: `tag` rewrites a snapshot under a new ID
// with the same tree and data; the verify records of the old ID still count
// for it (snapshots --verified), issue 17.
func TestE2ERetagKeepsVerification(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("verified bytes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	ids := e.snapshotIDs()
	if len(ids) != 1 {
		t.Fatalf("snapshots %v", ids)
	}
	old := ids[0]
	e.mustRun("verify", old, "--level", "L2")
	verified := func(level string) []string {
		var sns []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--verified", level, "--json")), &sns); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range sns {
			out = append(out, s.ID)
		}
		return out
	}
	if got := verified("L2"); !slices.Equal(got, []string{old}) {
		t.Fatalf("before the retag --verified L2 lists %v, want %s", got, old)
	}
	e.mustRun("tag", "--add", "x", old)
	ids = e.snapshotIDs()
	if len(ids) != 1 || ids[0] == old {
		t.Fatalf("after tag: snapshots %v (old %s)", ids, old)
	}
	if got := verified("L2"); !slices.Equal(got, ids) {
		t.Fatalf("after the retag --verified L2 lists %v, want %v", got, ids)
	}
	if got := verified("L3"); len(got) != 0 {
		t.Fatalf("--verified L3 lists %v: only L2 passed", got)
	}
}
