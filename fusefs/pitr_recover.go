package fusefs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"memento/repo"
	"memento/repo/pitr"
	"memento/repo/restore"
	"memento/walreplay"
)

// A Recoverer materialises the mount's spaces/<space>/at/<T>/ views as
// point-in-time restores: each instant looked up is restored
// (restore.RestorePointInTime, exactly what
// `memento restore --space S --at T --target DIR` does) into a directory of
// its own below a private directory of the mount process, which fusefs
// serves read-only and removes when it drops the view (it keeps the last
// --pitr-views) or unmounts. Beside the restored data dir the view gets
//
//	state.json      where the recovery stopped and the state digest there
//	memories.jsonl  the state at T, one memory a line (walreplay ExportJSONL)
//
// memories.jsonl is written when it is first used (LazyFile): it can
// be as large as the space and take longer than the restore. It is
// streamed from a replay of the restored WAL straight to disk, never held
// in memory.

// Names of the generated files of a view.
const (
	MemoriesFile = "memories.jsonl"
	StateFile    = "state.json"
)

// MountPITRDirName is the directory, in the cache dir, under which every
// mount process keeps its views, in a directory named after its PID.
const MountPITRDirName = "mount-pitr"

// RecovererOptions configure a Recoverer.
type RecovererOptions struct {
	// CacheDir holds MountPITRDirName; "" means repo.DefaultCacheDir().
	CacheDir string
	Logger   *slog.Logger
	// Printf, when set, gets one line per instant recovered, for the
	// operator (memento mount prints it).
	Printf func(format string, args ...any)
	// Planner plans the recoveries; nil means a new one. Pass the same to
	// Options.Planner.
	Planner *pitr.Planner
}

// Recoverer recovers points in time for one mount: its Recover is the
// mount's PointInTimeFunc, and Cleanup removes what it wrote.
type Recoverer struct {
	r       *repo.Repository
	log     *slog.Logger
	printf  func(format string, args ...any)
	planner *pitr.Planner
	base    string // this process's private directory; removed by Cleanup

	// slots bounds the recoveries running at once: each restores a whole
	// space with its own workers, and a shell loop over instants must not
	// start them all together.
	slots chan struct{}

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

// mountPITRParallel is how many instants a mount recovers at once.
const mountPITRParallel = 2

// PITState is state.json: where a view's recovery stopped.
type PITState struct {
	Space string `json:"space"`
	// Identity is the database the view was recovered from (its base
	// snapshot's); empty for the legacy database.
	Identity string `json:"identity,omitempty"`
	// At is the instant asked for; Seq, TimestampNS and Time the last entry
	// at or before it.
	At          string `json:"at"`
	AtNS        int64  `json:"at_ns"`
	Seq         uint64 `json:"seq"`
	TimestampNS int64  `json:"timestamp_ns"`
	Time        string `json:"time"`
	// StateDigest is the walreplay state digest at Seq, as `memento restore
	// --at` prints it; empty when the restored WAL does not start at seq 1
	// (the state before it lives only in the tiers; memories.jsonl is then
	// not written).
	StateDigest string `json:"state_digest"`
	// StateDigestKind is the kind of StateDigest (empty: version 1), as
	// the snapshot restored from records it.
	StateDigestKind  string  `json:"state_digest_kind,omitempty"`
	Records          int     `json:"records"`
	Snapshot         string  `json:"snapshot"`
	ArchivedSegments int     `json:"archived_segments"`
	Seconds          float64 `json:"seconds"` // the restore
}

// NewRecoverer makes the mount's private directory under the cache dir
// (--cache-dir, $MEMENTO_CACHE_DIR or the user cache dir), removing those
// of mount processes that died without cleaning up.
func NewRecoverer(r *repo.Repository, opts RecovererOptions) (*Recoverer, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Printf == nil {
		opts.Printf = func(string, ...any) {}
	}
	if opts.Planner == nil {
		opts.Planner = pitr.NewPlanner(restore.Fetcher(r))
	}
	cache := opts.CacheDir
	if cache == "" {
		cache = repo.DefaultCacheDir()
	}
	parent := filepath.Join(cache, MountPITRDirName)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("point-in-time views: %w", err)
	}
	removeStaleMountDirs(parent, opts.Logger)
	base, err := os.MkdirTemp(parent, strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("point-in-time views: %w", err)
	}
	return &Recoverer{r: r, log: opts.Logger, printf: opts.Printf, planner: opts.Planner, base: base,
		slots: make(chan struct{}, mountPITRParallel)}, nil
}

// removeStaleMountDirs removes the view directories of mount processes that
// are gone (killed, or the machine rebooted).
func removeStaleMountDirs(parent string, log *slog.Logger) {
	es, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range es {
		pidStr, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || pidAlive(pid) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if err := os.RemoveAll(p); err != nil {
			log.Warn("cannot remove the views of a dead mount", "dir", p, "err", err)
		}
	}
}

// pidAlive reports whether a process with this PID exists.
func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Cleanup waits for recoveries still running (the mount's context is
// cancelled by then, so they stop soon) and removes the private directory
// with whatever views are left in it.
func (m *Recoverer) Cleanup() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		m.log.Warn("point-in-time recoveries still running at unmount; removing their directory anyway", "dir", m.base)
	}
	if err := removeView(m.base); err != nil {
		m.log.Warn("cannot remove the point-in-time views", "dir", m.base, "err", err)
	}
}

// enter registers work that writes below m.base, which Cleanup waits for;
// after Cleanup has begun it refuses.
func (m *Recoverer) enter() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("the mount is closing")
	}
	m.running.Add(1)
	return nil
}

// Recover is the mount's PointInTimeFunc: RecoverSel of the only database
// that has the space.
func (m *Recoverer) Recover(ctx context.Context, space string, timeline uint32, t int64) (*PointInTime, error) {
	return m.RecoverSel(ctx, pitr.Select{Space: space, Timeline: timeline}, t)
}

// RecoverSel is the mount's PointInTimeSelFunc: `memento restore --space S
// [--identity ID] [--timeline N] --at T` into a directory of the view's own.
func (m *Recoverer) RecoverSel(ctx context.Context, sel pitr.Select, t int64) (*PointInTime, error) {
	space, timeline := sel.Space, sel.Timeline
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.running.Done()
	select {
	case m.slots <- struct{}{}:
		defer func() { <-m.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	start := time.Now()
	dir, err := os.MkdirTemp(m.base, space+"-")
	if err != nil {
		return nil, fmt.Errorf("space %s: point-in-time view: %w", space, err)
	}
	ok := false
	defer func() {
		if !ok {
			removeView(dir)
		}
	}()
	// The view's root is at/<T>/; restore makes a data dir 0755.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	target := walreplay.Target{AtTime: &t}
	res, err := restore.RestorePointInTime(ctx, m.r, restore.PITROptions{Space: space, Identity: sel.Identity, Host: sel.Host, Timeline: timeline, Target: target, DataDir: dir, NoSync: true, Planner: m.planner})
	if err != nil {
		return nil, err
	}
	base, err := m.r.FindSnapshot(ctx, res.Snapshot)
	if err != nil {
		return nil, err
	}
	st := PITState{Space: space, Identity: base.Identity(), At: walreplay.FormatTime(t), AtNS: t, Seq: res.Seq, TimestampNS: res.TimestampNS,
		Time: res.Time, StateDigest: res.StateDigest, StateDigestKind: res.StateDigestKind, Records: res.Records, Snapshot: res.Snapshot,
		ArchivedSegments: res.ArchivedSegments, Seconds: time.Since(start).Seconds()}
	b, err := json.MarshalIndent(&st, "", "  ")
	if err != nil {
		return nil, err
	}
	access, err := spaceAccess(res.Target)
	if err != nil {
		return nil, err
	}
	if err := writeViewFile(filepath.Join(dir, StateFile), append(b, '\n'), access); err != nil {
		return nil, fmt.Errorf("space %s at %s: %w", space, st.At, err)
	}
	pit := &PointInTime{Dir: dir, Close: func() error { return removeView(dir) }}
	digest := st.StateDigest
	if digest == "" {
		digest = "unknown: the WAL does not start at seq 1"
	} else {
		if st.StateDigestKind != "" {
			digest += ", kind " + st.StateDigestKind
		}
		pit.Lazy = []LazyFile{{Name: MemoriesFile, Write: func(ctx context.Context) error {
			if err := m.enter(); err != nil {
				return err
			}
			defer m.running.Done()
			start := time.Now()
			if err := writeMemories(ctx, filepath.Join(res.Target, "wal"), res, filepath.Join(dir, MemoriesFile), m.base, access); err != nil {
				return fmt.Errorf("space %s at %s: %s: %w", space, st.At, MemoriesFile, err)
			}
			m.log.Info("wrote memories.jsonl for the mount", "space", space, "at", st.At, "seconds", time.Since(start).Seconds())
			return nil
		}}}
	}
	m.printf("recovered space %s at %s for the mount: seq %d at %s (state digest %s), %d records, in %.2fs\n",
		space, st.At, st.Seq, st.Time, digest, st.Records, st.Seconds)
	ok = true
	return pit, nil
}

// removeView removes a view's directory, also when the restore gave some
// directory of it no write permission (as the snapshot recorded it).
func removeView(dir string) error {
	if os.RemoveAll(dir) == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// writeMemories replays the restored WAL (which RestorePointInTime has cut
// right after res.Seq) and streams the state to path as JSON lines, through
// a temporary file in tmpDir (outside the view, on the same filesystem): a
// failure leaves no partial memories.jsonl, and a listing of the view while
// it is written shows no stray file. The replay
// is independent of the restore's: its digest must be the one the restore
// reported, or the file is refused.
func writeMemories(ctx context.Context, walDir string, res *restore.PITRResult, path, tmpDir string, access viewAccess) error {
	l, err := walreplay.OpenLog(walDir)
	if err != nil {
		return fmt.Errorf("restored WAL: %w", err)
	}
	// Zero copy: the state refers to the restored segments, which nothing
	// changes while it lives.
	state := walreplay.NewZeroCopyState()
	defer state.Close()
	pos, err := l.Replay(ctx, walreplay.Target{ToSeq: &res.Seq}, state)
	if err != nil {
		return fmt.Errorf("restored WAL: %w", err)
	}
	d, err := state.DigestOf(res.StateDigestKind)
	if err != nil {
		return fmt.Errorf("restored WAL: %w", err)
	}
	if got := hex.EncodeToString(d[:]); pos.Seq != res.Seq || got != res.StateDigest {
		return &repo.CorruptError{What: "restored WAL", Detail: fmt.Sprintf("replays to seq %d with state digest %s, the restore reported seq %d with %s",
			pos.Seq, got, res.Seq, res.StateDigest)}
	}
	f, err := os.CreateTemp(tmpDir, ".memories-*.jsonl")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := state.ExportJSONL(f); err != nil {
		return err
	}
	if err := access.apply(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// viewAccess is who may read a view's generated files (state.json,
// memories.jsonl): whoever the restored space directory lets in. They hold
// the space's state, and with --allow-other the kernel enforces their
// modes: a 0700 space's files are 0400 and owned by the space's owner, not
// 0444 for every local user.
type viewAccess struct {
	perm     os.FileMode
	uid, gid int
}

// spaceAccess derives a view's viewAccess from its restored space
// directory: each class (owner, group, others) that may list and enter it
// (r and x) may read the files; they get its owner and group.
func spaceAccess(spaceDir string) (viewAccess, error) {
	fi, err := os.Stat(spaceDir)
	if err != nil {
		return viewAccess{}, err
	}
	a := viewAccess{uid: -1, gid: -1}
	for _, shift := range []uint{6, 3, 0} {
		if fi.Mode().Perm()>>shift&0o5 == 0o5 {
			a.perm |= 0o4 << shift
		}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		a.uid, a.gid = int(st.Uid), int(st.Gid)
	}
	return a, nil
}

// apply gives the open file f the view's owner and mode (owner first).
func (a viewAccess) apply(f *os.File) error {
	if a.uid >= 0 {
		if err := f.Chown(a.uid, a.gid); err != nil {
			return err
		}
	}
	return f.Chmod(a.perm)
}

// writeViewFile writes a generated file of a view with the view's access.
func writeViewFile(path string, data []byte, access viewAccess) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := access.apply(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Planner is the planner the recoveries use, for Options.Planner.
func (m *Recoverer) Planner() *pitr.Planner { return m.planner }
