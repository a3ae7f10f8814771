package fusefs

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

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
	removeStaleMountDirs(parent, slog.New(slog.DiscardHandler))
	for name, kept := range dirs {
		_, err := os.Stat(filepath.Join(parent, name))
		if (err == nil) != kept {
			t.Errorf("%s: kept=%v, want %v", name, err == nil, kept)
		}
	}
}
