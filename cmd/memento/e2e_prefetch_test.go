package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestBackupWrongPasswordPrefetchLeavesNothing: a path backup reads its
// first files ahead while the key is derived (backup.Prefetch); with a
// wrong password it must still fail as before, leaving no cache
// directory, no lock, no reserve and nothing else new in the repository
// or the cache. The same backup with the right password then stores every
// file.
func TestBackupWrongPasswordPrefetchLeavesNothing(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	for i := range 300 {
		p := filepath.Join(src, fmt.Sprintf("d%02d", i%17), fmt.Sprintf("f%03d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := func(dir string) []string {
		var names []string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil {
				names = append(names, p)
			}
			return nil
		})
		slices.Sort(names)
		return names
	}
	repoBefore, cacheBefore := list(e.repo), list(e.cache)
	e.password = "wrong"
	e.wantFail(exitWrongPassword, "wrong password", "backup", src)
	if got := list(e.repo); !slices.Equal(got, repoBefore) {
		t.Errorf("repository after a wrong password: %q, want %q", got, repoBefore)
	}
	if got := list(e.cache); !slices.Equal(got, cacheBefore) {
		t.Errorf("cache after a wrong password: %q, want %q", got, cacheBefore)
	}
	e.password = "correct horse"
	var outs []struct {
		Summary struct {
			Files uint64 `json:"files"`
		} `json:"summary"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("backup", "--json", src)), &outs); err != nil || len(outs) != 1 || outs[0].Summary.Files != 300 {
		t.Errorf("backup --json: %v, %+v; want one snapshot of 300 files", err, outs)
	}
}
