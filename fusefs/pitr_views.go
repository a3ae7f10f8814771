package fusefs

import (
	"container/list"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// errUnmounted is what a view asked for after the mount closed gets.
var errUnmounted = errors.New("the mount is closing")

// failureTTL is how long a failed recovery is answered from memory: ls,
// stat and shells look a name up several times in a row, and each would
// otherwise retry the recovery and log its reason again. It is short, so an
// instant that `wal archive` has just made recoverable appears at once.
const failureTTL = time.Second

// recentFailure wraps the error of a recovery that failed less than
// failureTTL ago; the lookup does not log it again.
type recentFailure struct{ err error }

func (e *recentFailure) Error() string { return e.err.Error() }
func (e *recentFailure) Unwrap() error { return e.err }

type failure struct {
	err error
	at  time.Time
}

// pitViews keeps the recovered points in time of a mount: at most limit of
// them stay materialized (a recovery is a restore of a whole space into a
// private directory, so they cost disk, not memory), least recently used go
// first, and a view something still uses is never dropped. Concurrent
// requests for the same instant share one recovery.
//
// Every operation on a view's nodes holds a reference for its duration (an
// open file until it is released), so dropping a view, which removes its
// directory, never pulls files from under a reader. A dropped view that is
// looked at again (the kernel still caches its inodes) is recovered again.
type pitViews struct {
	mu     sync.Mutex
	limit  int
	m      map[string]*pitView
	order  list.List // of *pitView, loaded ones only, most recently used first
	closed bool
	failed map[string]failure // recent failed recoveries, by key
	log    *slog.Logger
}

// pitView is one recovered point in time.
type pitView struct {
	key  string
	pit  *PointInTime
	err  error
	done chan struct{} // closed once pit or err is set
	refs int
	elem *list.Element // nil while loading and once dropped

	lazyMu   sync.Mutex // serializes the writing of Lazy files
	lazyDone sync.Map   // names of the Lazy files written
}

func newPITViews(limit int, log *slog.Logger) *pitViews {
	return &pitViews{limit: max(limit, 1), m: map[string]*pitView{}, failed: map[string]failure{}, log: log}
}

// acquire returns the view of key with a reference the caller must release,
// recovering it with load (in this goroutine) unless it is materialized or
// being recovered by someone else. A failure is answered as a recentFailure
// for failureTTL, then tried again. ctx bounds only the wait for another
// goroutine's recovery.
func (v *pitViews) acquire(ctx context.Context, key string, load func() (*PointInTime, error)) (*pitView, error) {
	for {
		v.mu.Lock()
		if v.closed {
			v.mu.Unlock()
			return nil, errUnmounted
		}
		pv, ok := v.m[key]
		if !ok {
			if fl, ok := v.failed[key]; ok {
				if time.Since(fl.at) < failureTTL {
					v.mu.Unlock()
					return nil, &recentFailure{fl.err}
				}
				delete(v.failed, key)
			}
			break // v.mu stays locked
		}
		if pv.elem != nil {
			v.order.MoveToFront(pv.elem)
			pv.refs++
			v.mu.Unlock()
			return pv, nil
		}
		v.mu.Unlock()
		select {
		case <-pv.done:
			if pv.err != nil {
				return nil, &recentFailure{pv.err}
			}
			// Loaded (or dropped again already): take a reference the usual way.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	pv := &pitView{key: key, done: make(chan struct{})}
	v.m[key] = pv
	v.mu.Unlock()

	pit, err := load()
	v.mu.Lock()
	var drop []*pitView
	switch {
	case err != nil:
		delete(v.m, key)
		if len(v.failed) > 1000 { // an instant per ls of a mistyped name; keep it bounded
			clear(v.failed)
		}
		v.failed[key] = failure{err, time.Now()}
	case v.closed:
		// Unmounted while recovering: nobody can use it any more.
		delete(v.m, key)
		pv.pit = pit
		drop = append(drop, pv)
		err = errUnmounted
	default:
		pv.pit = pit
		pv.refs = 1
		pv.elem = v.order.PushFront(pv)
		drop = v.evict()
	}
	pv.err = err
	v.mu.Unlock()
	close(pv.done)
	v.closeViews(drop)
	if err != nil {
		return nil, err
	}
	return pv, nil
}

// release gives back a reference from acquire.
func (v *pitViews) release(pv *pitView) {
	v.mu.Lock()
	pv.refs--
	var drop []*pitView
	if pv.refs == 0 && !v.closed {
		drop = v.evict()
	}
	v.mu.Unlock()
	v.closeViews(drop)
}

// evict unlinks least recently used views nobody holds until at most limit
// remain; the caller closes them outside the lock. Views in use may keep the
// count above the limit for a while; release evicts again.
func (v *pitViews) evict() []*pitView {
	var drop []*pitView
	for e := v.order.Back(); e != nil && v.order.Len() > v.limit; {
		prev := e.Prev()
		pv := e.Value.(*pitView)
		if pv.refs == 0 {
			v.order.Remove(e)
			pv.elem = nil
			delete(v.m, pv.key)
			drop = append(drop, pv)
		}
		e = prev
	}
	return drop
}

// closeViews releases what dropped views hold on disk.
func (v *pitViews) closeViews(drop []*pitView) {
	for _, pv := range drop {
		if pv.pit == nil || pv.pit.Close == nil {
			continue
		}
		if err := pv.pit.Close(); err != nil {
			v.log.Warn("cannot remove a point-in-time view", "view", pv.key, "err", err)
		}
	}
}

// closeAll drops every view, in use or not (the mount is gone), and makes
// recoveries still running drop theirs when they finish.
func (v *pitViews) closeAll() {
	v.mu.Lock()
	v.closed = true
	var drop []*pitView
	for e := v.order.Front(); e != nil; e = e.Next() {
		pv := e.Value.(*pitView)
		pv.elem = nil
		delete(v.m, pv.key)
		drop = append(drop, pv)
	}
	v.order.Init()
	v.mu.Unlock()
	v.closeViews(drop)
}

// len returns how many views are materialized (for tests).
func (v *pitViews) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.order.Len()
}
