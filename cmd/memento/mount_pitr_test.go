package main

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"memento/fusefs"
	"memento/walreplay"
)

// FuzzMountInstant: at/<T> must accept exactly the instants `memento
// restore --at` accepts, as the same nanosecond. fusefs may not import
// walreplay, so it has its own parser; this keeps the two in step.
func FuzzMountInstant(f *testing.F) {
	for _, s := range []string{"2026-11-21T14:29:00Z", "2026-11-21T14:29:00.123456789Z", "2026-11-21T14:29:00.1234567891Z",
		"1763735340000000000", "-5", "+5", "", "-", "README", "2026-11-21T15:29:00.5+01:00", "2300-01-01T00:00:00Z",
		"99999999999999999999", "2026-11-21T14:29:00.Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, gerr := fusefs.ParseInstant(s)
		want, werr := walreplay.ParseTime(s)
		if (gerr == nil) != (werr == nil) || gerr == nil && got != want {
			t.Fatalf("%q: mount %d, %v; restore --at %d, %v", s, got, gerr, want, werr)
		}
	})
}

// TestRemoveStaleMountDirs: the views of a mount process that is gone are
// removed; those of a live process (and odd names) are kept.
func TestRemoveStaleMountDirs(t *testing.T) {
	parent := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{ // name -> kept
		strconv.Itoa(dead.Process.Pid) + "-123": false,
		strconv.Itoa(os.Getpid()) + "-456":      true,
		strconv.Itoa(os.Getppid()) + "-789":     true,
		"notapid-1":                             true,
	}
	for name := range dirs {
		if err := os.MkdirAll(filepath.Join(parent, name, "space-a-1", "spaces"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleMountDirs(parent, &app{log: slog.New(slog.DiscardHandler)})
	for name, kept := range dirs {
		_, err := os.Stat(filepath.Join(parent, name))
		if (err == nil) != kept {
			t.Errorf("%s: kept=%v, want %v", name, err == nil, kept)
		}
	}
}
