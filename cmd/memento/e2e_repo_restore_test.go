package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ERestoreSpaceThenBackupAll: restoring a space over a changed one keeps
// the old one as spaces/<id>.pre-restore-<time>; the next `backup --all` must
// treat that safety copy as what it is, not fail on it as a bad space id.
func TestE2ERestoreSpaceThenBackupAll(t *testing.T) {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "engram")
	for _, s := range []string{"alpha", "beta"} {
		if err := os.MkdirAll(filepath.Join(dd, "spaces", s, "hot"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dd, "spaces", s, "hot", "h.json"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.mustRun("backup", "--data-dir", dd, "--all")
	if err := os.WriteFile(filepath.Join(dd, "spaces", "alpha", "hot", "h.json"), []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := e.mustRun("restore", "--space", "alpha", "--latest", "--target", dd)
	if !strings.Contains(out, "the previous content is kept at "+filepath.Join(dd, "spaces", "alpha.pre-restore-")) {
		t.Fatalf("restore output %q does not name the safety copy", out)
	}
	if b, err := os.ReadFile(filepath.Join(dd, "spaces", "alpha", "hot", "h.json")); err != nil || string(b) != "alpha" {
		t.Fatalf("restored alpha: %q, %v", b, err)
	}
	out = e.mustRun("backup", "--data-dir", dd, "--all")
	if strings.Count(out, " saved: space ") != 2 {
		t.Fatalf("backup --all after a restore: %q", out)
	}
}
