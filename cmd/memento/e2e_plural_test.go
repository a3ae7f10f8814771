package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCountsInHumanOutput: a count of one is singular in the human output
// ("1 file", not "1 files"), others plural, and --json keeps its numbers.
// A repository with one file backed up: backup, restore, snapshots, and
// replicate run twice (the second copies one file).
func TestCountsInHumanOutput(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "only.txt"), []byte("one file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plural := regexp.MustCompile(`\b1 (files|dirs|snapshots|records|entries|packs|blobs)\b`)
	noPlural := func(what, out string) {
		t.Helper()
		if m := plural.FindString(out); m != "" {
			t.Errorf("%s says %q:\n%s", what, m, out)
		}
	}
	want := func(what, out string, subs ...string) {
		t.Helper()
		for _, s := range subs {
			if !strings.Contains(out, s) {
				t.Errorf("%s: want %q in:\n%s", what, s, out)
			}
		}
		noPlural(what, out)
	}

	out := e.mustRun("backup", src)
	want("first backup", out, ", 1 file, ", ", 0 unchanged files) in ")
	out = e.mustRun("backup", src)
	want("second backup", out, ", 1 file, ", ", 1 unchanged file) in ")
	out = e.mustRun("snapshots")
	want("snapshots", out, "\n2 snapshots\n")

	dst := filepath.Join(t.TempDir(), "dst")
	out = e.mustRun("restore", "latest", "--target", dst)
	want("restore", out, ": 1 file, ")
	var res struct {
		Result struct {
			Files uint64 `json:"files"`
		} `json:"result"`
	}
	raw := e.mustRun("restore", "latest", "--target", filepath.Join(t.TempDir(), "dst2"), "--json")
	if err := json.Unmarshal([]byte(raw), &res); err != nil || res.Result.Files != 1 {
		t.Errorf("restore --json: files %d (%v), want 1:\n%s", res.Result.Files, err, raw)
	}

	replica := filepath.Join(t.TempDir(), "replica")
	e.mustRun("replicate", "--to", replica)
	// Again: one file is new, the audit record of the first replicate.
	out = e.mustRun("replicate", "--to", replica)
	want("second replicate", out, ": 1 file (")
}
