package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// Locks are ordinary immutable repository files (locks/<hash>), so they work on
// any backend without exclusive-create or rename: a process writes its lock,
// then lists the others. Two processes that race both see each other, and an
// exclusive one then backs off: the protocol errs on the side of refusing.
// Shared locks (backup, restore, archive) coexist; an exclusive lock (prune,
// repair) coexists with nothing.
type lockInfo struct {
	Version   int       `json:"version"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Command   string    `json:"command,omitempty"`
}

const (
	kindLock = "lock"
	// LockRefresh is how often a held lock is rewritten with a fresh time.
	LockRefresh = 5 * time.Minute
	// LockStale is when a lock that was not refreshed is ignored: its holder died.
	LockStale = 30 * time.Minute
)

// Lock is a held repository lock; Unlock releases it.
type Lock struct {
	r    *Repository
	info lockInfo
	mu   sync.Mutex
	name string
	stop chan struct{}
	done chan struct{}
}

// Lock takes a shared or exclusive lock, or fails with ErrLocked naming the
// holder. The lock is refreshed in the background until Unlock.
func (r *Repository) Lock(ctx context.Context, exclusive bool, command string) (*Lock, error) {
	host, _ := os.Hostname()
	l := &Lock{r: r, info: lockInfo{Version: 1, Host: host, PID: os.Getpid(), Time: time.Now().UTC(), Exclusive: exclusive, Command: command},
		stop: make(chan struct{}), done: make(chan struct{})}
	id, err := r.saveFile(ctx, dirLocks, kindLock, l.info)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	l.name = fileName(dirLocks, id)
	if err := r.checkLocks(ctx, l); err != nil {
		_ = r.be.Delete(context.WithoutCancel(ctx), l.name)
		return nil, err
	}
	// The local index was brought up to date when the repository was
	// opened, but a prune may have finished between then and now: once
	// the lock is held nothing can delete packs, so look again.
	if err := r.resyncIfPruned(ctx); err != nil {
		_ = r.be.Delete(context.WithoutCancel(ctx), l.name)
		return nil, err
	}
	go l.refresh()
	return l, nil
}

// checkLocks fails if any live lock other than ours conflicts with ours.
func (r *Repository) checkLocks(ctx context.Context, mine *Lock) error {
	locks, err := r.Locks(ctx)
	if err != nil {
		return err
	}
	for _, o := range locks {
		if o.Name == mine.name || o.Stale {
			continue
		}
		if o.Exclusive || mine.info.Exclusive {
			mode := "shared"
			if o.Exclusive {
				mode = "exclusive"
			}
			return fmt.Errorf("%w: %s lock held by %s pid %d since %s (%s); if that process is gone, run 'memento unlock'",
				ErrLocked, mode, o.Host, o.PID, o.Time.Format(time.RFC3339), o.Command)
		}
	}
	return nil
}

// LockStatus describes one lock file.
type LockStatus struct {
	Name      string
	Host      string
	PID       int
	Time      time.Time
	Exclusive bool
	Command   string
	Stale     bool // not refreshed for LockStale, or its process is gone from this host
}

// Locks lists the repository's locks, telling which are stale.
func (r *Repository) Locks(ctx context.Context) ([]LockStatus, error) {
	var out []LockStatus
	host, _ := os.Hostname()
	err := r.be.List(ctx, dirLocks, func(name string, size int64) error {
		var li lockInfo
		if err := r.loadFile(ctx, name, kindLock, &li); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // released while we listed
			}
			r.log.Warn("unreadable lock file, treating it as stale", "file", name, "err", err)
			out = append(out, LockStatus{Name: name, Stale: true})
			return nil
		}
		st := LockStatus{Name: name, Host: li.Host, PID: li.PID, Time: li.Time, Exclusive: li.Exclusive, Command: li.Command}
		st.Stale = time.Since(li.Time) > LockStale || (li.Host == host && !processAlive(li.PID))
		out = append(out, st)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	return out, nil
}

// RemoveStaleLocks deletes stale locks (all locks with all=true) and returns how many.
func (r *Repository) RemoveStaleLocks(ctx context.Context, all bool) (int, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range locks {
		if l.Stale || all {
			if err := r.be.Delete(ctx, l.Name); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func (l *Lock) refresh() {
	defer close(l.done)
	t := time.NewTicker(LockRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			l.info.Time = time.Now().UTC()
			id, err := l.r.saveFile(ctx, dirLocks, kindLock, l.info)
			if err == nil {
				l.mu.Lock()
				old := l.name
				l.name = fileName(dirLocks, id)
				l.mu.Unlock()
				_ = l.r.be.Delete(ctx, old)
			} else {
				l.r.log.Warn("could not refresh lock", "err", err)
			}
			cancel()
		}
	}
}

// Unlock releases the lock. It is safe to call more than once.
func (l *Lock) Unlock() error {
	select {
	case <-l.stop:
		return nil
	default:
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.be.Delete(context.Background(), l.name)
}
