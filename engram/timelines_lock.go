package engram

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// timelinesLockName is the lock file beside timelines.json
// (DIR/.memento/timelines.lock); it holds no data.
const timelinesLockName = "timelines.lock"

// LockTimelines takes an exclusive flock(2) on the data dir's timelines
// lock and returns its release. timelines.json holds every space's entry
// in one file, rewritten whole: a read-modify-write of it (a pending fork
// turned into a timeline, a restore recording its point) must hold this
// lock from the read to the write, or commands and goroutines updating
// other spaces at the same time (`wal archive --all`, `restore --all`, a
// backup beside `wal watch`) lose each other's updates. The lock is per
// open file, so it excludes goroutines of one process as well as other
// processes; the kernel drops it when the process ends.
func LockTimelines(dataDir string) (func(), error) {
	return lockTimelines(dataDir, unix.LOCK_EX)
}

// LockTimelinesShared takes a shared flock(2) on the data dir's timelines
// lock. An archive run of a space holds it from reading the space's
// timeline to recording what it shipped, and a restore in place holds the
// exclusive lock from recording its pending fork until the restored space
// is swapped in: so a run (of a `wal watch` left running across a restore)
// either finishes before the swap, on the old timeline with the old files,
// or starts after it and sees the pending fork; it never ships restored
// files onto the old timeline.
//
// A data dir memento cannot write (a read-only mount of it) cannot be
// restored into either: the run goes on without the lock.
func LockTimelinesShared(dataDir string) (func(), error) {
	unlock, err := lockTimelines(dataDir, unix.LOCK_SH)
	if errors.Is(err, unix.EROFS) || errors.Is(err, fs.ErrPermission) {
		return func() {}, nil
	}
	return unlock, err
}

func lockTimelines(dataDir string, how int) (func(), error) {
	dir := filepath.Join(dataDir, MementoDirName)
	if err := os.Mkdir(dir, 0o755); err == nil {
		if err := syncDir(dataDir); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, timelinesLockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}
