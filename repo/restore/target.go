package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"memento/repo/directio"
)

// Where a restore puts its result depends on what the target is:
//
//   - missing: the staging directory beside it is renamed to its name;
//   - an empty directory, or a mount point (which cannot be renamed): the
//     restore is staged inside it, in .memento.restore-<n> (.memento.pitr-<n>)
//     with its owner file, and once everything is verified and on disk the
//     owner file is marked "moving" and the staged entries are renamed up
//     into the target one by one (never replacing a name that appeared
//     meanwhile). An interruption before the mark leaves the target empty
//     but for the staging directory, which the next restore into it
//     removes; one after the mark leaves a complete, verified result of
//     which part is still in the staging directory, and the next restore
//     into the target finishes the move (it says so) before it starts;
//   - anything else: moved aside to TARGET.pre-restore-<time> (the safety
//     copy) and replaced by the staging directory. A non-empty mount point
//     is refused, as are the root, the home directory and the current
//     directory or one above it (ErrUnsafeTarget) unless forced.

// ErrUnsafeTarget is a restore target that a restore would move aside and
// that is too dangerous to move without being asked explicitly
// (RestoreOptions.ForceTarget).
var ErrUnsafeTarget = errors.New("unsafe restore target")

// ErrPartialSpace is a partial restore (a Filter) of a space snapshot.
var ErrPartialSpace = errors.New("a space is restored whole")

// inPlacePrefix is the name prefix of an in-place staging directory; the
// kind follows (".restore-", ".pitr-").
const inPlacePrefix = ".memento"

// movingMark is appended to the owner file of an in-place staging
// directory once its content is complete and on disk, before the first
// entry is renamed into the target.
const movingMark = "moving\n"

// targetPlan is how stageAndSwap places its result into dest.
type targetPlan struct {
	inPlace bool // dest is an existing empty directory: stage in it
}

// planTarget looks at dest before anything is written: it finishes or
// removes what an interrupted in-place restore left in it, and refuses a
// dest that would have to be moved aside when it is a mount point or a
// dangerous place (unless force).
func planTarget(dest string, force bool, log *slog.Logger) (targetPlan, error) {
	fi, err := os.Lstat(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return targetPlan{}, nil
	case err != nil:
		return targetPlan{}, fmt.Errorf("restore target %s: %w", dest, err)
	case !fi.IsDir():
		return targetPlan{}, nil // moved aside, as a non-empty directory
	}
	removeStaleStaging(dest, log)
	if isEmptyDir(dest) {
		return targetPlan{inPlace: true}, nil
	}
	if !force {
		if why := dangerousTarget(dest); why != "" {
			return targetPlan{}, fmt.Errorf("%w: %s is %s and not empty: a restore would move it aside to %s.pre-restore-<time>", ErrUnsafeTarget, dest, why, filepath.Base(dest))
		}
	}
	if isMountPoint(dest) {
		return targetPlan{}, fmt.Errorf("restore target %s is a mount point and not empty: a mount point cannot be moved aside; empty it, or restore elsewhere", dest)
	}
	return targetPlan{}, nil
}

// dangerousTarget says why moving the existing directory dest aside would
// hurt ("" when it would not): it is the root, the home directory, the
// current directory or a directory above it.
func dangerousTarget(dest string) string {
	real, err := filepath.EvalSymlinks(dest)
	if err != nil {
		real = dest
	}
	if real == "/" {
		return "the root directory"
	}
	if home, err := os.UserHomeDir(); err == nil {
		if h, err := filepath.EvalSymlinks(home); err == nil && h == real {
			return "the home directory"
		}
	}
	if wd, err := os.Getwd(); err == nil {
		if w, err := filepath.EvalSymlinks(wd); err == nil {
			if w == real {
				return "the current directory"
			}
			if strings.HasPrefix(w, real+"/") {
				return "a directory above the current directory"
			}
		}
	}
	return ""
}

// isMountPoint reports whether dir is the root of a mounted file system.
func isMountPoint(dir string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Stat(filepath.Join(dir, ".."), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev || st.Ino == pst.Ino
}

// moveInPlace renames the entries of the finished in-place staging
// directory up into dest (its parent), after marking the owner file: from
// the mark on, the staged result is complete and on disk, and an
// interrupted move is finished by the next restore (finishMove). A name
// that appeared in dest meanwhile is never replaced: the entries already
// moved go back and the restore fails.
func moveInPlace(stage *staging, dest string) error {
	before := mustSize(stage.owner)
	if _, err := stage.owner.WriteAt([]byte(movingMark), before); err != nil {
		return fmt.Errorf("restore target %s: %w", dest, err)
	}
	if err := stage.owner.Sync(); err != nil {
		return fmt.Errorf("restore target %s: %w", dest, err)
	}
	names, err := readNames(stage.dir)
	if err != nil {
		return fmt.Errorf("restore target %s: %w", dest, err)
	}
	for i, name := range names {
		if err := renameNoReplace(filepath.Join(stage.dir, name), filepath.Join(dest, name)); err != nil {
			for _, back := range names[:i] {
				_ = renameNoReplace(filepath.Join(dest, back), filepath.Join(stage.dir, back))
			}
			_ = stage.owner.Truncate(before) // not moving any more: the staging directory goes
			return fmt.Errorf("restore target %s: %w", dest, err)
		}
	}
	if err := os.Remove(stage.dir); err != nil {
		return fmt.Errorf("restore target %s: %w", dest, err)
	}
	stage.release()
	if err := directio.SyncPath(dest); err != nil {
		return fmt.Errorf("restore target %s: %w", dest, err)
	}
	return nil
}

func mustSize(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// finishMove completes the move of an in-place restore interrupted after
// its mark: every entry left in the staging directory dir goes up into its
// parent.
func finishMove(dir string) error {
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	for _, name := range names {
		if err := renameNoReplace(filepath.Join(dir, name), filepath.Join(parent, name)); err != nil {
			return err
		}
	}
	if err := os.Remove(dir); err != nil {
		return err
	}
	return directio.SyncPath(parent)
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// renameNoReplace renames from to to, failing if to exists.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: check, then rename.
		if _, lerr := os.Lstat(to); !errors.Is(lerr, fs.ErrNotExist) {
			err = unix.EEXIST
		} else {
			err = unix.Rename(from, to)
		}
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
