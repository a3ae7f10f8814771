package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"memento/repo"
)

// ErrAgentRunning is returned by Run when another agent holds the data dir's
// agent lock; it wraps repo.ErrLocked (exit 6).
var ErrAgentRunning = fmt.Errorf("%w: another memento agent runs on this data dir", repo.ErrLocked)

// dirLock is the one-agent-per-data-dir lock: an flock on
// DATA_DIR/.memento/agent.lock (or, when the data dir is not writable, on a
// file in the cache dir named after the data dir), whose content names the
// holder. The kernel drops the flock when the process dies, so a stale file
// never blocks a new agent.
type dirLock struct {
	f    *os.File
	path string
}

func lockDataDir(dataDir, cacheDir string) (*dirLock, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	paths := []string{filepath.Join(abs, ".memento", "agent.lock")}
	if cacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cacheDir = filepath.Join(d, "memento")
		}
	}
	if cacheDir != "" {
		name := strings.NewReplacer("/", "_", "\\", "_", ":", "_").Replace(strings.Trim(abs, "/"))
		paths = append(paths, filepath.Join(cacheDir, "agent-"+name+".lock"))
	}
	var errs []error
	for _, p := range paths {
		l, err := tryLock(p)
		if err == nil || errors.Is(err, ErrAgentRunning) {
			return l, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("agent lock: %w", errors.Join(errs...))
}

func tryLock(p string) (*dirLock, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s: %s)", ErrAgentRunning, p, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	host, _ := os.Hostname()
	_ = f.Truncate(0)
	_, _ = f.WriteAt(fmt.Appendf(nil, "pid %d host %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339)), 0)
	_ = f.Sync()
	return &dirLock{f: f, path: p}, nil
}

func (l *dirLock) unlock() {
	if l == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = l.f.Close() // releases the flock
}
