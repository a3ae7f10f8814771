package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The agent lock lives in DIR/.memento/, or in the cache dir when the data
// dir cannot take it (read-only in Kubernetes; here .memento is a file); a
// second holder is refused with the first one named, and a released lock is
// free again.
func TestDataDirLock(t *testing.T) {
	dd, cache := t.TempDir(), t.TempDir()
	l, err := lockDataDir(dd, cache)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dd, ".memento", "agent.lock"); l.path != want {
		t.Errorf("lock at %s, want %s", l.path, want)
	}
	if _, err := lockDataDir(dd, cache); !errors.Is(err, ErrAgentRunning) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second lock: %v", err)
	}
	l.unlock()
	l, err = lockDataDir(dd, cache)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	l.unlock()

	ro := t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, ".memento"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = lockDataDir(ro, cache)
	if err != nil {
		t.Fatal(err)
	}
	defer l.unlock()
	if !strings.HasPrefix(l.path, cache+string(filepath.Separator)) {
		t.Errorf("lock of an unusable data dir at %s, want it in the cache dir %s", l.path, cache)
	}
	if _, err := lockDataDir(ro, cache); !errors.Is(err, ErrAgentRunning) {
		t.Fatalf("second lock in the cache dir: %v", err)
	}
}
