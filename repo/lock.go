package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Locks are ordinary immutable repository files (locks/<hash>), so they work on
// any backend without exclusive-create or rename: a process writes its lock,
// then lists the others. Two processes that race both see each other, and an
// exclusive one then backs off: the protocol errs on the side of refusing.
// Shared locks (backup, restore, archive) coexist; an exclusive lock (prune,
// repair) coexists with nothing.
//
// A lock proves its holder alive by being rewritten every LockRefresh. How
// long ago that was is judged by the storage's clock (ModTimeLister: the
// files' mtimes or LastModified, compared with the newest lock file), never
// by the hosts' clocks, so clock skew between hosts does not matter. A pid is
// only checked when the lock was written on this boot in this PID namespace
// (BootID, PIDNamespace): a container sharing the host name has pids that
// mean nothing here.
type lockInfo struct {
	Version   int       `json:"version"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Command   string    `json:"command,omitempty"`
	// BootID is /proc/sys/kernel/random/boot_id and PIDNamespace the link
	// /proc/self/ns/pid ("pid:[4026531836]") of the holder; both are absent
	// in locks of older versions and where /proc is not readable, and such
	// locks are judged by their age only.
	BootID       string `json:"boot_id,omitempty"`
	PIDNamespace string `json:"pid_ns,omitempty"`
	// Manifests marks the shared lock of a command that replaces or
	// deletes snapshot manifests (tag, forget: LockManifests). Two such
	// locks conflict with each other, not with other shared locks. Absent
	// in locks of older binaries, which read it as an ordinary shared lock.
	Manifests bool `json:"manifests,omitempty"`
	// Prune marks the locks of a prune (LockPrune, and its exclusive lock
	// taken with LockExclusiveOver): two prunes conflict even while both
	// hold only shared locks (phase 1). Absent in locks of older binaries,
	// whose prune takes only an exclusive lock.
	Prune bool `json:"prune,omitempty"`
}

const (
	kindLock = "lock"
	// LockRefresh is how often a held lock is rewritten with a fresh time.
	LockRefresh = 5 * time.Minute
	// LockStale is when a lock that was not refreshed is ignored: its holder died.
	LockStale = 30 * time.Minute
)

// LockOptions say how the commands of an open repository lock it (Options.Lock).
type LockOptions struct {
	// ReadOnly says the command only reads the repository. Its lock is
	// shared; when the storage refuses to write it as read-only (EROFS,
	// EACCES, EPERM), the command goes on without a lock and one warning
	// says so (ReadOnlyStorage then reports true).
	ReadOnly bool
	// NoLock takes no lock at all (--no-lock); only with ReadOnly. Nothing
	// then keeps a prune from deleting what the command reads: it is for
	// storage nobody prunes meanwhile (a file system snapshot, a WORM share).
	NoLock bool
	// FreesSpace says the command frees space (forget, prune). When its lock
	// cannot be written because the storage is full (ENOSPC), the backend's
	// reserve (SpaceReserver) is released and the lock written into it.
	FreesSpace bool
}

// lockState is what a Repository knows about locking.
type lockState struct {
	opts     LockOptions
	readOnly atomic.Bool // the storage refused the lock as read-only
	lost     atomic.Pointer[error]
	// refreshEvery and staleAfter are LockRefresh and LockStale, shorter
	// in tests (zero: the constants).
	refreshEvery, staleAfter time.Duration
	// manifestWait is ManifestLockWait, shorter in tests (zero: the constant).
	manifestWait time.Duration
	// reserved is closed once the reserve the last lock started to make
	// (Lock.reserved) is made or failed; nil before any lock.
	reserved atomic.Pointer[chan struct{}]
}

// waitReserve waits for the reserve the repository's last lock started to
// make: a pack is written only once it is there (Packer.write).
func (s *lockState) waitReserve() {
	if ch := s.reserved.Load(); ch != nil {
		<-*ch
	}
}

func (s *lockState) timing() (refresh, stale time.Duration) {
	refresh, stale = LockRefresh, LockStale
	if s.refreshEvery > 0 {
		refresh, stale = s.refreshEvery, s.staleAfter
	}
	return refresh, stale
}

// LockLost returns the error (wrapping ErrLockLost) of a lock of r that was
// lost while held, or nil. The lock's Context was cancelled with it, so the
// command holding it failed with context.Canceled; this says why.
func (r *Repository) LockLost() error {
	if p := r.locking.lost.Load(); p != nil {
		return *p
	}
	return nil
}

// ReadOnlyStorage reports whether a lock was not taken because the storage is
// read-only (LockOptions.ReadOnly): nothing can be written, audit records
// included.
func (r *Repository) ReadOnlyStorage() bool { return r.locking.readOnly.Load() }

// Lock is a held repository lock; Unlock releases it.
type Lock struct {
	r           *Repository
	info        lockInfo
	held        bool // false: a lock that holds nothing (NoLock, read-only storage)
	usedReserve bool
	// reserved is closed once the reserve is made (or failed), which Lock
	// starts and does not wait for: Unlock waits for it.
	reserved chan struct{}
	mu       sync.Mutex
	name     string
	stop     chan struct{}
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelCauseFunc
	lastOK   atomic.Int64          // wall-clock UnixNano when the lock was last written
	lastErr  atomic.Pointer[error] // why the last refresh failed, nil after a success
	// refreshing is held while a refresh replaces the lock file, so that a
	// LockExclusiveOver disregarding this lock sees one stable name.
	refreshing sync.Mutex
	// over are the locks of this process an exclusive lock does not count
	// as conflicts (LockExclusiveOver).
	over []*Lock
}

// lockKey finds the Lock in its Context (lockHeld).
type lockKey struct{}

// Context returns the context the work done under the lock must use: the
// one Lock was given, cancelled (cause: an error wrapping ErrLockLost) when
// the lock is lost, that is when it could not be refreshed for so long that
// other processes may soon deem it stale, or when another process removed
// it (memento unlock --remove). Either way a prune may delete what the work
// relies on, so it must stop and keep nothing partial, as if interrupted.
func (l *Lock) Context() context.Context { return l.ctx }

// UnheldLock is a Lock that holds nothing: its Context is ctx and Unlock
// does nothing. It is what a fake of the storage core returns from Lock, so
// that the feature packages' operations run against it without a
// repository.
func UnheldLock(ctx context.Context) *Lock { return &Lock{ctx: ctx} }

// Lock takes a shared or exclusive lock, or fails with ErrLocked naming the
// holder. The lock is refreshed in the background until Unlock.
func (r *Repository) Lock(ctx context.Context, exclusive bool, command string) (*Lock, error) {
	return r.lock(ctx, newLockInfo(exclusive, command))
}

// LockPrune takes the lock of phase 1 of a prune: shared, so backups, WAL
// archiving, restores and the other shared locks coexist with it, but it
// conflicts with an exclusive lock and with another prune's lock (two
// prunes planning at once would each delete what the other planned to
// keep). Prune then takes the exclusive lock for its short phase 2 with
// LockExclusiveOver, disregarding this one.
func (r *Repository) LockPrune(ctx context.Context, command string) (*Lock, error) {
	li := newLockInfo(false, command)
	li.Prune = true
	return r.lock(ctx, li)
}

// LockExclusiveOver takes the exclusive lock (marked as a prune's, see
// LockPrune) for a process that already holds the locks held (prune's own
// phase-1 lock and, in the agent, its session's shared lock): those are not
// counted as conflicts; every other live lock is, as for Lock. The caller
// guarantees that no work of this process goes on under held while the
// exclusive lock is held (the agent pauses its WAL archiving and waits for
// its jobs first): otherwise the exclusive lock would exclude nothing.
func (r *Repository) LockExclusiveOver(ctx context.Context, command string, held ...*Lock) (*Lock, error) {
	li := newLockInfo(true, command)
	li.Prune = true
	var over []*Lock
	for _, h := range held {
		if h != nil && h.held {
			over = append(over, h)
		}
	}
	return r.lockOver(ctx, li, over)
}

// ManifestLockWait is how long LockManifests waits for the lock of another
// command that replaces or deletes manifests (tag, forget) to be released.
const ManifestLockWait = 2 * time.Minute

// LockManifests takes the lock of a command that replaces or deletes
// snapshot manifests (tag, forget): shared, so it coexists with backups,
// restores, mounts and WAL archiving, but it conflicts with another such
// lock. Two tag runs (or a tag and a forget) each read a manifest and
// replace or delete it: at once, both would replace the same snapshot and
// leave two, or a forget would delete a snapshot a tag has just replaced.
// While only such a lock is in the way it waits, up to ManifestLockWait,
// since tag and forget take seconds; an exclusive lock (prune, repair)
// fails at once with ErrLocked, as Lock. Once the lock is held the local
// catalog is brought up to date with snapshots/ (Sync), so the caller sees
// what the previous holder changed.
func (r *Repository) LockManifests(ctx context.Context, command string) (*Lock, error) {
	li := newLockInfo(false, command)
	li.Manifests = true
	wait := ManifestLockWait
	if r.locking.manifestWait > 0 {
		wait = r.locking.manifestWait
	}
	deadline := time.Now().Add(wait)
	pause := 50 * time.Millisecond
	for {
		l, err := r.lock(ctx, li)
		if err == nil {
			if err := r.Sync(l.Context()); err != nil {
				_ = l.Unlock()
				return nil, err
			}
			return l, nil
		}
		if !errors.Is(err, errManifestsBusy) || time.Now().After(deadline) {
			return nil, err
		}
		if pause == 50*time.Millisecond {
			r.log.Info(fmt.Sprintf("%s waits up to %s for the manifest lock", command, wait), "err", err)
		}
		// Two processes that wrote their locks at once both back off:
		// a random pause makes one of them first next time.
		d := pause/2 + time.Duration(rand.Int64N(int64(pause)))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waiting for the manifest lock: %w", command, ctx.Err())
		case <-time.After(d):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// errManifestsBusy is wrapped in the ErrLocked error of a LockManifests
// whose only conflicts are other LockManifests locks.
var errManifestsBusy = errors.New("another command is replacing or deleting snapshots")

func (r *Repository) lock(ctx context.Context, info lockInfo) (*Lock, error) {
	return r.lockOver(ctx, info, nil)
}

func (r *Repository) lockOver(ctx context.Context, info lockInfo, over []*Lock) (*Lock, error) {
	exclusive, command := info.Exclusive, info.Command
	o := r.locking.opts
	if o.NoLock {
		if exclusive || !o.ReadOnly {
			return nil, fmt.Errorf("%s writes to the repository and needs a lock: --no-lock is for commands that only read", command)
		}
		return &Lock{r: r, ctx: ctx}, nil
	}
	l := &Lock{r: r, info: info, held: true, stop: make(chan struct{}), done: make(chan struct{}), over: over}
	written := time.Now()
	name, err := writeLock(ctx, r, l.info)
	if err != nil && o.ReadOnly && !exclusive && isReadOnly(err) {
		r.locking.readOnly.Store(true)
		r.log.Warn(fmt.Sprintf("the repository %s is read-only: %s runs without a lock", r.be.Location(), command), "err", err)
		return &Lock{r: r, ctx: ctx}, nil
	}
	if err != nil && o.FreesSpace && errors.Is(err, syscall.ENOSPC) {
		if sr, ok := r.be.(SpaceReserver); ok {
			if n, rerr := sr.ReleaseReserve(ctx); rerr == nil && n > 0 {
				r.log.Warn(fmt.Sprintf("the repository %s is full: released its %d KiB reserve so that %s can take its lock and free space",
					r.be.Location(), n>>10, command))
				l.usedReserve = true
				name, err = writeLock(ctx, r, l.info)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	l.name = name
	heldLocks.Store(name, struct{}{})
	l.lastOK.Store(written.UnixNano())
	if err := l.checkOthers(ctx); err != nil {
		heldLocks.Delete(name)
		_ = r.be.Delete(context.WithoutCancel(ctx), l.name)
		return nil, err
	}
	// The local index was brought up to date when the repository was
	// opened, but a prune may have finished between then and now: once
	// the lock is held nothing can delete packs, so look again.
	if err := r.resyncIfPruned(ctx); err != nil {
		heldLocks.Delete(name)
		_ = r.be.Delete(context.WithoutCancel(ctx), l.name)
		return nil, err
	}
	// The reserve (4 MiB written and fsynced with its directory, on the
	// first lock of a local repository) is made while the command goes
	// on: before its first pack is written (Packer.write waits for it) and
	// before the lock is released (Unlock), as when Lock made it first
	// (docs/benchmarks.md, "Issue 18, session 22: the idle core of a first
	// backup").
	l.reserved = make(chan struct{})
	if l.usedReserve {
		close(l.reserved)
	} else {
		r.locking.reserved.Store(&l.reserved)
		go func() {
			defer close(l.reserved)
			ensureReserve(context.WithoutCancel(ctx), r.be, r.log)
		}()
	}
	r.log.Debug("repository locked", "command", command, "exclusive", exclusive, "lock", path.Base(name))
	var cctx context.Context
	cctx, l.cancel = context.WithCancelCause(ctx)
	l.ctx = context.WithValue(cctx, lockKey{}, l)
	go l.refresh()
	return l, nil
}

// UsedReserve reports whether the lock could only be written into the
// storage's reserve: the storage is full, and the command should free space
// without needing more.
func (l *Lock) UsedReserve() bool { return l.usedReserve }

// ensureReserve makes the backend's reserve for a full disk, if it has one
// and it is missing. Failing to is not an error: the next lock tries again.
func ensureReserve(ctx context.Context, be Backend, log *slog.Logger) {
	if sr, ok := be.(SpaceReserver); ok {
		if err := sr.EnsureReserve(ctx); err != nil {
			log.Debug("could not make the reserve for a full repository", "err", err)
		}
	}
}

// isReadOnly reports whether a write failed because the storage may not be
// written to at all.
func isReadOnly(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)
}

func newLockInfo(exclusive bool, command string) lockInfo {
	me := currentProcess()
	return lockInfo{Version: 1, Host: me.host, PID: os.Getpid(), Time: time.Now().UTC(), Exclusive: exclusive, Command: command,
		BootID: me.bootID, PIDNamespace: me.pidNS}
}

// writeLock stores a lock file and returns its name.
func writeLock(ctx context.Context, r *Repository, li lockInfo) (string, error) {
	id, err := r.SaveFile(ctx, DirLocks, kindLock, li)
	if err != nil {
		return "", err
	}
	return FileName(DirLocks, id), nil
}

// process says where a pid means something: on one host, boot and PID namespace.
type process struct{ host, bootID, pidNS string }

// heldLocks holds the names of the lock files this process holds now: added
// by Lock once its file is written, removed by Unlock (and by a failed Lock).
// A lock file of this very process that is not among them was left behind by
// a release that could not delete it (the repository was unreachable at that
// moment, e.g. a NAS that went away in the middle of an agent's prune): it is
// stale, not a live lock blocking this process until LockStale. Bounded by
// the locks held at once; the Lock values own the entries.
var heldLocks sync.Map // lock file name -> struct{}

func currentProcess() process {
	var p process
	p.host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		p.bootID = strings.TrimSpace(string(b))
	}
	p.pidNS, _ = os.Readlink("/proc/self/ns/pid")
	return p
}

// checkOthers fails if any live lock other than mine conflicts with it.
func (mine *Lock) checkOthers(ctx context.Context) error {
	// The locks disregarded keep their names while the others are listed.
	skip := map[string]bool{}
	for _, h := range mine.over {
		h.refreshing.Lock()
		defer h.refreshing.Unlock()
		skip[h.currentName()] = true
	}
	locks, err := mine.r.Locks(ctx)
	if err != nil {
		return err
	}
	var busy error
	for _, o := range locks {
		if o.Name == mine.name || o.Stale || skip[o.Name] {
			continue
		}
		if o.Exclusive || mine.info.Exclusive {
			mode := "shared"
			if o.Exclusive {
				mode = "exclusive"
			}
			return fmt.Errorf("%w: %s lock held by %s pid %d since %s (%s); %s",
				ErrLocked, mode, o.Host, o.PID, o.Time.Format(time.RFC3339), o.Command, o.unlockHint())
		}
		if o.Prune && mine.info.Prune {
			return fmt.Errorf("%w: another prune holds the repository: %s pid %d since %s (%s); %s",
				ErrLocked, o.Host, o.PID, o.Time.Format(time.RFC3339), o.Command, o.unlockHint())
		}
		if o.Manifests && mine.info.Manifests && busy == nil {
			busy = fmt.Errorf("%w: %w (%s, held by %s pid %d since %s); %s",
				ErrLocked, errManifestsBusy, o.Command, o.Host, o.PID, o.Time.Format(time.RFC3339), o.unlockHint())
		}
	}
	return busy
}

// unlockHint says what clears a live lock if its process is in fact gone.
func (l LockStatus) unlockHint() string {
	if l.Local {
		return "if that process is gone, run 'memento unlock'"
	}
	return fmt.Sprintf("%s; if that process is gone, run 'memento unlock --remove %s' (plain 'memento unlock' keeps it until it is %s old)",
		l.Reason, l.ID(), LockStale)
}

// LockStatus describes one lock file.
type LockStatus struct {
	Name      string
	Host      string
	PID       int
	Time      time.Time // when the holder wrote it, by the holder's clock
	Exclusive bool
	Manifests bool // a shared lock of tag or forget (LockManifests)
	Prune     bool // a lock of a prune (LockPrune, LockExclusiveOver)
	Command   string
	// Age is how long ago the lock was written or last refreshed: by the
	// storage's clock where the backend tells (ModTimeLister), relative to
	// the newest lock file; else by this host's clock from Time.
	Age time.Duration
	// Local: the holder ran on this boot in this PID namespace, so its pid
	// was checked.
	Local bool
	Stale bool // not refreshed for LockStale, or Local and its process is gone
	// Reason says why the lock is stale or live, e.g. "process 123 is gone
	// on this boot" or "refreshed 40s ago on host db1".
	Reason string
	// Removed is set by RemoveLocks.
	Removed bool
}

// ID is the short name of the lock (the first 8 hex digits of its file name),
// which 'memento unlock --remove' takes.
func (l LockStatus) ID() string {
	b := path.Base(l.Name)
	if len(b) > 8 {
		return b[:8]
	}
	return b
}

// lockFile is a listed lock file; mtime is zero when the backend does not tell.
type lockFile struct {
	name  string
	mtime time.Time
}

// listLocks lists locks/ with the storage's modification times where the
// backend reports them (storageClock).
func listLocks(ctx context.Context, be Backend) (files []lockFile, storageClock bool, err error) {
	if ml, ok := be.(ModTimeLister); ok {
		err = ml.ListModTimes(ctx, DirLocks, func(name string, _ int64, mtime time.Time) error {
			files = append(files, lockFile{name, mtime})
			return nil
		})
		storageClock = true
	} else {
		err = be.List(ctx, DirLocks, func(name string, _ int64) error {
			files = append(files, lockFile{name: name})
			return nil
		})
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("list locks: %w", err)
	}
	return files, storageClock, nil
}

// Locks lists the repository's locks, telling which are stale and why.
func (r *Repository) Locks(ctx context.Context) ([]LockStatus, error) {
	files, storageClock, err := listLocks(ctx, r.be)
	if err != nil {
		return nil, err
	}
	// The storage's "now": the newest lock file. A caller holding a lock
	// has just written or refreshed its own, so this is at most LockRefresh
	// behind the storage's clock; without a lock of its own, ages are
	// understated, which errs on the side of keeping locks.
	var now time.Time
	for _, f := range files {
		if f.mtime.After(now) {
			now = f.mtime
		}
	}
	me := currentProcess()
	var out []LockStatus
	for _, f := range files {
		var li lockInfo
		if err := r.LoadFile(ctx, f.name, kindLock, &li); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // released while we listed
			}
			r.log.Warn("unreadable lock file, treating it as stale", "file", f.name, "err", err)
			out = append(out, LockStatus{Name: f.name, Stale: true, Reason: "unreadable lock file: " + err.Error()})
			continue
		}
		st := LockStatus{Name: f.name, Host: li.Host, PID: li.PID, Time: li.Time, Exclusive: li.Exclusive, Manifests: li.Manifests, Prune: li.Prune, Command: li.Command}
		if storageClock {
			st.Age = now.Sub(f.mtime)
		} else {
			st.Age = time.Since(li.Time)
		}
		st.Local = li.BootID != "" && li.PIDNamespace != "" && li.BootID == me.bootID && li.PIDNamespace == me.pidNS
		judgeLock(&st, li, me)
		out = append(out, st)
	}
	return out, nil
}

// OfThisProcess reports whether the lock was written by this very process
// (same boot, PID namespace and pid).
func (l LockStatus) OfThisProcess() bool { return l.Local && l.PID == os.Getpid() }

// isHeld reports whether this process holds the lock file name.
func isHeld(name string) bool { _, ok := heldLocks.Load(name); return ok }

// judgeLock decides whether a lock is stale and says why.
func judgeLock(st *LockStatus, li lockInfo, me process) {
	age := st.Age.Round(time.Second)
	switch {
	case st.Age > LockStale:
		st.Stale, st.Reason = true, fmt.Sprintf("not refreshed for %s (stale after %s)", age, LockStale)
	case st.Local && !processAlive(li.PID):
		st.Stale, st.Reason = true, fmt.Sprintf("process %d is gone on this boot", li.PID)
	case st.Local && li.PID == os.Getpid() && !isHeld(st.Name):
		st.Stale, st.Reason = true, fmt.Sprintf("left by this process (%d), which released it while the repository was unreachable", li.PID)
	case st.Local:
		st.Reason = fmt.Sprintf("process %d is running on this host (refreshed %s ago)", li.PID, age)
	case li.BootID == "" || li.PIDNamespace == "":
		st.Reason = fmt.Sprintf("refreshed %s ago on host %s (a lock without boot and PID namespace ids: judged by its age only)", age, li.Host)
	case li.Host == me.host:
		st.Reason = fmt.Sprintf("refreshed %s ago on host %s (another boot or PID namespace, e.g. a container: its pid cannot be checked from here)", age, li.Host)
	default:
		st.Reason = fmt.Sprintf("refreshed %s ago on host %s", age, li.Host)
	}
}

// RemoveLocksOptions choose which locks RemoveLocks deletes besides the stale ones.
type RemoveLocksOptions struct {
	All bool     // every lock, even live ones
	IDs []string // these locks (LockStatus.ID, or a longer prefix of the file name), even live ones
}

// RemoveLocks deletes the stale locks and those opts name, durably, and
// returns every lock with Removed set on those deleted. So that ages are
// judged by the storage's clock, it first writes a lock of its own (shared,
// command "unlock"; not in the result), which it deletes at the end. An ID
// that names no lock fails with ErrNotFound before anything is deleted.
func (r *Repository) RemoveLocks(ctx context.Context, opts RemoveLocksOptions) ([]LockStatus, error) {
	probe, err := writeLock(ctx, r, newLockInfo(false, "unlock"))
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	defer func() { _ = r.be.Delete(context.WithoutCancel(ctx), probe) }()
	all, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	locks := all[:0]
	for _, l := range all {
		if l.Name != probe {
			locks = append(locks, l)
		}
	}
	named := map[string]bool{}
	for _, id := range opts.IDs {
		found := false
		for _, l := range locks {
			if id != "" && strings.HasPrefix(path.Base(l.Name), strings.ToLower(id)) {
				named[l.Name], found = true, true
			}
		}
		if !found {
			return locks, fmt.Errorf("%w: no lock %s (released, or refreshed under a new name since: then its holder is alive)", ErrNotFound, id)
		}
	}
	for i, l := range locks {
		if l.Stale || opts.All || named[l.Name] {
			if err := r.be.Delete(ctx, l.Name); err != nil {
				return locks, err
			}
			locks[i].Removed = true
		}
	}
	return locks, nil
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
	every, _ := l.r.locking.timing()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.refreshOnce(every); err != nil {
				l.lose(err)
				return
			}
		}
	}
}

// lose gives the lock up: the repository reports err (LockLost), one error
// line says it, and the lock's Context is cancelled with it.
func (l *Lock) lose(err error) {
	if l.r.locking.lost.CompareAndSwap(nil, &err) {
		l.r.log.Error(err.Error())
	}
	l.cancel(err)
}

// tooOld returns an error wrapping ErrLockLost when the lock was last
// written so long ago, by the wall clock (which, unlike Go's monotonic
// clock, counts a suspended machine, a paused VM or a stopped process),
// that it would be stale before the next refresh: others may have deemed
// it stale already, or will before it is written again.
func (l *Lock) tooOld() error {
	every, stale := l.r.locking.timing()
	since := time.Since(time.Unix(0, l.lastOK.Load()))
	if since+every < stale {
		return nil
	}
	why := "the process was stopped or the machine suspended?"
	if p := l.lastErr.Load(); p != nil {
		why = "refreshing failed: " + (*p).Error()
	}
	return fmt.Errorf("%w: lock %s of %s was not refreshed for %s (%s): stopped, as others deem a lock stale after %s",
		ErrLockLost, LockStatus{Name: l.currentName()}.ID(), l.info.Command, roundAge(since), why, stale)
}

// roundAge rounds an age for a message: to seconds, or milliseconds below one.
func roundAge(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

func (l *Lock) currentName() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.name
}

// refreshOnce writes the lock anew and deletes the old file. It returns an
// error wrapping ErrLockLost when the lock must be given up: it is already
// too old (tooOld), the old file is gone (another process removed it), or
// writing failed and the next try would come too late. A failure with time
// left is a warning.
func (l *Lock) refreshOnce(every time.Duration) error {
	if err := l.tooOld(); err != nil {
		return err
	}
	l.refreshing.Lock()
	defer l.refreshing.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	old := l.currentName()
	id := LockStatus{Name: old}.ID()
	if _, err := l.r.be.Stat(ctx, old); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: lock %s of %s was removed by another process (memento unlock?): stopped, as a prune may now delete what it relies on",
			ErrLockLost, id, l.info.Command)
	}
	written := time.Now()
	l.info.Time = written.UTC()
	name, err := writeLock(ctx, l.r, l.info)
	if err != nil {
		l.lastErr.Store(&err)
		if lost := l.tooOld(); lost != nil {
			return lost
		}
		l.r.log.Warn("could not refresh the lock; trying again", "lock", id, "err", err, "next", every)
		return nil
	}
	l.lastOK.Store(written.UnixNano())
	l.lastErr.Store(nil)
	l.mu.Lock()
	l.name = name
	l.mu.Unlock()
	_ = l.r.be.Delete(ctx, old)
	return nil
}

// LockHeld returns nil while the lock that ctx was made under
// (Lock.Context) holds, and otherwise an error wrapping ErrLockLost, giving
// the lock up. Work calls it right before a step that commits what it did
// (a snapshot, WAL records, prune's deletions): the refresh loop may not
// have run since the process was stopped or the machine suspended. A
// context of no lock always passes.
func LockHeld(ctx context.Context) error {
	if err := context.Cause(ctx); errors.Is(err, ErrLockLost) {
		return err
	}
	l, _ := ctx.Value(lockKey{}).(*Lock)
	if l == nil || !l.held {
		return nil
	}
	if err := l.tooOld(); err != nil {
		l.lose(err)
		return err
	}
	return nil
}

// Unlock releases the lock, durably where the backend can (a removed lock
// does not come back after a power cut). A lock that used the storage's
// reserve makes the reserve again if there is room now. It is safe to call
// more than once.
func (l *Lock) Unlock() error {
	if !l.held {
		return nil
	}
	select {
	case <-l.stop:
		return nil
	default:
	}
	close(l.stop)
	<-l.done
	<-l.reserved
	l.cancel(nil)
	l.mu.Lock()
	defer l.mu.Unlock()
	heldLocks.Delete(l.name) // released, even if its file cannot be deleted now (judgeLock)
	err := l.r.be.Delete(context.Background(), l.name)
	if l.usedReserve {
		if sr, ok := l.r.be.(SpaceReserver); ok {
			if rerr := sr.EnsureReserve(context.Background()); rerr != nil {
				l.r.log.Warn("could not make the reserve for a full repository again; the next command that locks it tries again", "err", rerr)
			}
		}
	}
	return err
}
