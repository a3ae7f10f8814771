package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/repo"
	"memento/repo/directio"
	"memento/repo/pitr"
)

// RestoreOptions tune a restore.
type RestoreOptions struct {
	Progress *repo.Progress
	// Workers is how many files are written at once (default 2); each file
	// also fetches its chunks ahead in parallel.
	Workers int
	// Mode says, for a space snapshot restored into a data dir, whether
	// archiving continues from the target (Continue: the identity is kept,
	// a restore before the end of the snapshot's timeline leaves a pending
	// fork) or it is a scratch copy (Scratch, the default).
	Mode IdentityMode
}

// RestoreResult says what a restore did, for the operator.
type RestoreResult struct {
	// Timeline is what a Continue restore of a space did to its timeline
	// (nil otherwise).
	Timeline   *PITRResult `json:"timeline,omitempty"`
	Target     string      `json:"target"`      // the directory now holding the restored data
	SafetyCopy string      `json:"safety_copy"` // where the previous content was moved, if any
	Files      uint64      `json:"files"`
	Dirs       uint64      `json:"dirs"`
	Bytes      uint64      `json:"bytes"`
	Seconds    float64     `json:"seconds"`
}

// Restore writes a snapshot to target. Everything is written into a temporary
// sibling first and every chunk and file is verified while it is written; only
// when all of it verified is it renamed into place. A non-empty target is
// first renamed to target.pre-restore-<time> (a safety copy that costs
// nothing and keeps every original inode), never overwritten.
//
// A space snapshot restores into an Engram data dir: target is the data dir,
// only spaces/<space> is replaced, and metadata.json is written if missing.
func Restore(ctx context.Context, r Repository, sn *repo.Snapshot, target string, opts RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	target, err := filepath.Abs(target)
	if err != nil {
		return nil, err
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Progress == nil {
		opts.Progress = &repo.Progress{}
	}
	lock, err := r.Lock(ctx, false, "restore")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ctx = lock.Context() // cancelled if the lock is lost

	dest, tree := target, sn.Root
	var spaceNode, meta *repo.Node // the space directory's own node: its mode and mtime go to dest
	if sn.Space != "" {
		// Restore only the space's directory into the data dir, refusing
		// a symlink where Engram keeps a directory before writing anything.
		dest = filepath.Join(target, "spaces", sn.Space)
		if tree, spaceNode, meta, err = pitr.SpaceTree(ctx, r, sn); err != nil {
			return nil, err
		}
		if err := checkSpaceTree(ctx, r, sn, tree); err != nil {
			return nil, err
		}
	} else if _, err := r.LoadTree(ctx, sn.Space, sn.Root); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ShortID(), err)
	}
	rs := &restorer{r: r, sn: sn, opts: opts}
	res := &RestoreResult{Target: target}
	spec := stageSpec{dest: dest, kind: ".restore-", dirNode: spaceNode, meta: meta, dataDir: target}
	if sn.Space != "" && sn.Engram != nil && opts.Mode != Scratch {
		if err := rs.plainTimeline(ctx, &spec, target, res); err != nil {
			return nil, err
		}
	}
	if res.SafetyCopy, err = rs.stageAndSwap(ctx, spec, func(tmp string) error {
		return rs.restoreDir(ctx, tree, tmp, "")
	}); err != nil {
		return nil, err
	}
	res.Files, res.Dirs, res.Bytes = rs.files, rs.dirs, rs.bytes
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// stageSpec says what stageAndSwap builds and where it goes.
type stageSpec struct {
	dest string // the directory the result replaces
	kind string // the staging kind in its name, one of stagingKinds
	// dirNode is the snapshot's node of dest (a space directory), whose
	// owner, mode and mtime dest gets; nil for a plain snapshot's root.
	dirNode *repo.Node
	// meta is the snapshot's metadata.json, written to dataDir when it has
	// none (nil: nothing to write).
	meta    *repo.Node
	dataDir string
	noSync  bool // skip makeDurable: a scratch copy, never a restore
	// beforeSwap, if set, runs once the staged result is on disk, right
	// before the swap (a point-in-time restore records its timeline
	// there); undo, if set, runs when the swap then fails, afterSwap when
	// it succeeded.
	beforeSwap func() error
	undo       func()
	afterSwap  func()
}

// stageAndSwap is the one stage-and-swap path of plain and point-in-time
// restores: it creates a staging directory beside spec.dest, lets fill
// write the result into it, gives it spec.dirNode's metadata, writes the
// data dir's missing metadata.json beside its final name, puts everything
// on disk, and only then swaps the staging directory into place (moving a
// non-empty dest aside) and places metadata.json. Any failure before the
// swap removes the staging directory and the temporary metadata.json:
// nothing partial ever reaches the target. It returns the safety copy's
// path, if one was made.
func (rs *restorer) stageAndSwap(ctx context.Context, spec stageSpec, fill func(tmp string) error) (string, error) {
	dest := spec.dest
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", fmt.Errorf("restore target %s: %w", dest, err)
	}
	stage, err := newStaging(filepath.Dir(dest), "."+filepath.Base(dest)+spec.kind, rs.r.Logger())
	if err != nil {
		return "", fmt.Errorf("restore target %s: %w", dest, err)
	}
	tmp := stage.dir
	_ = os.Chmod(tmp, 0o755) // made 0700; the root has no node of its own
	metaTmp := ""
	fail := func(err error) (string, error) {
		stage.abort()
		if metaTmp != "" {
			os.Remove(metaTmp)
		}
		return "", err
	}
	if err := fill(tmp); err != nil {
		return fail(err)
	}
	// A space directory keeps its snapshot's mode, owner and mtime, in a
	// plain restore as in a point-in-time one.
	if spec.dirNode != nil {
		if err := setDirMeta(tmp, spec.dirNode); err != nil {
			return fail(err)
		}
	}
	if spec.meta != nil {
		if _, err := os.Lstat(filepath.Join(spec.dataDir, "metadata.json")); errors.Is(err, fs.ErrNotExist) {
			metaTmp = filepath.Join(spec.dataDir, ".metadata.json"+spec.kind+rs.sn.Space)
			os.Remove(metaTmp)
			if err := rs.restoreFile(ctx, spec.meta, metaTmp, "metadata.json"); err != nil {
				return fail(err)
			}
		}
	}
	if !spec.noSync {
		if err := makeDurable(stage, metaTmp); err != nil {
			return fail(err)
		}
	}
	if spec.beforeSwap != nil {
		if err := spec.beforeSwap(); err != nil {
			return fail(err)
		}
	}
	safety, err := swapIntoPlace(stage, dest)
	if err != nil {
		if spec.undo != nil {
			spec.undo()
		}
		return fail(err)
	}
	if spec.afterSwap != nil {
		spec.afterSwap()
	}
	if metaTmp != "" {
		if err := placeNew(metaTmp, filepath.Join(spec.dataDir, "metadata.json")); err != nil {
			return safety, err
		}
	}
	return safety, nil
}

// makeDurable puts the staged tree and the file metaTmp (if any) on disk
// before anything is swapped into place. metaTmp lies in the data dir,
// which may be another file system than its spaces/.
func makeDurable(stage *staging, metaTmp string) error {
	if metaTmp != "" {
		if err := directio.SyncPath(metaTmp); err != nil {
			return err
		}
	}
	return stage.sync()
}

// placeNew moves the finished file tmp to dst unless dst exists by now: the
// data dir's metadata.json is written by whichever of several concurrent
// space restores gets there first, and never overwritten. The directory
// is synced, so the new name is on disk when it returns.
func placeNew(tmp, dst string) error {
	err := os.Link(tmp, dst)
	os.Remove(tmp)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("restore %s: %w", dst, err)
	}
	return directio.SyncPath(filepath.Dir(dst))
}

// swapIntoPlace renames the finished staging directory to dest, moving a
// non-empty dest aside first, removes the staging's owner file and syncs
// dest's parent, which holds all three names. It returns the safety copy's
// path, if one was made.
func swapIntoPlace(stage *staging, dest string) (string, error) {
	tmp := stage.dir
	safety := ""
	fi, err := os.Lstat(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("restore target %s: %w", dest, err)
	case fi.IsDir() && isEmptyDir(dest):
		if err := os.Remove(dest); err != nil {
			return "", fmt.Errorf("restore target %s: %w", dest, err)
		}
	default:
		safety = dest + ".pre-restore-" + time.Now().UTC().Format("20060102T150405.000000000Z")
		if err := os.Rename(dest, safety); err != nil {
			return "", fmt.Errorf("restore target %s: keep safety copy: %w", dest, err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		if safety != "" {
			_ = os.Rename(safety, dest) // put the original back
		}
		return "", fmt.Errorf("restore target %s: %w", dest, err)
	}
	stage.release()
	if err := directio.SyncPath(filepath.Dir(dest)); err != nil {
		if safety != "" {
			return "", fmt.Errorf("restore target %s (the previous content is at %s): %w", dest, safety, err)
		}
		return "", fmt.Errorf("restore target %s: %w", dest, err)
	}
	return safety, nil
}

func isEmptyDir(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

type restorer struct {
	r    Repository
	sn   *repo.Snapshot
	opts RestoreOptions

	files, dirs, bytes uint64 // updated only by the walking goroutine or under g

	mu      sync.Mutex
	zeroIDs map[uint32]chunk.ID // IDs of chunks of n zeros, see planFetch
}

type fileJob struct {
	n         *repo.Node
	path, rel string
}

// restoreDir recreates a tree below dir (which exists). Files are written by a
// pool of workers; directory metadata is applied last, deepest first, so that
// read-only directories and mtimes come out right.
func (rs *restorer) restoreDir(ctx context.Context, tree chunk.ID, dir, rel string) error {
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan fileJob, 64)
	var written [16]uint64
	for w := 0; w < rs.opts.Workers; w++ {
		g.Go(func() error {
			for j := range jobs {
				if err := rs.restoreFile(gctx, j.n, j.path, j.rel); err != nil {
					return err
				}
				written[w%len(written)]++
			}
			return nil
		})
	}
	type dirMeta struct {
		n    *repo.Node
		path string
	}
	var metas []dirMeta
	var walk func(id chunk.ID, dir, rel string) error
	walk = func(id chunk.ID, dir, rel string) error {
		t, err := rs.r.LoadTree(gctx, rs.sn.Space, id)
		if err != nil {
			return fmt.Errorf("snapshot %s: %s: %w", rs.sn.ShortID(), repo.DisplayRel(rel), err)
		}
		for _, n := range t.Nodes {
			p := filepath.Join(dir, n.Name) // n.Name was validated by decodeTree
			nrel := repo.JoinRel(rel, n.Name)
			switch n.Type {
			case repo.NodeDir:
				if err := os.Mkdir(p, 0o700); err != nil {
					return fmt.Errorf("restore %s: %w", p, err)
				}
				rs.dirs++
				if err := walk(*n.Subtree, p, nrel); err != nil {
					return err
				}
				metas = append(metas, dirMeta{n, p})
			case repo.NodeSymlink:
				if err := os.Symlink(n.LinkTarget, p); err != nil {
					return fmt.Errorf("restore %s: %w", p, err)
				}
				setOwnerAndTimes(p, n, true)
			case repo.NodeFile:
				rs.files++
				rs.bytes += n.Size
				select {
				case jobs <- fileJob{n, p, nrel}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	}
	werr := walk(tree, dir, rel)
	close(jobs)
	if err := g.Wait(); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	for i := len(metas) - 1; i >= 0; i-- {
		if err := setDirMeta(metas[i].path, metas[i].n); err != nil {
			return err
		}
	}
	return nil
}

// setDirMeta gives a restored directory its node's owner, mode and mtime.
// Plain and point-in-time restores both apply it to the space directory.
func setDirMeta(p string, n *repo.Node) error {
	setOwner(p, n) // before the chmod: chown clears the setuid and setgid bits
	if err := os.Chmod(p, fs.FileMode(n.Mode)&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	setTimes(p, n, false)
	return nil
}

// setOwnerAndTimes restores ownership (when running as root) and mtime.
// Failures are not fatal: content matters more than metadata on a restore.
func setOwnerAndTimes(p string, n *repo.Node, symlink bool) {
	setOwner(p, n)
	setTimes(p, n, symlink)
}

// setOwner restores ownership when running as root. It must come before a
// chmod, because chown clears the setuid and setgid bits of a file.
func setOwner(p string, n *repo.Node) {
	if os.Geteuid() == 0 {
		_ = os.Lchown(p, int(n.UID), int(n.GID))
	}
}

// setTimes restores the mtime (atime is set to it too).
func setTimes(p string, n *repo.Node, symlink bool) {
	ts := []unix.Timespec{unix.NsecToTimespec(n.MTimeNS), unix.NsecToTimespec(n.MTimeNS)}
	flags := 0
	if symlink {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	_ = unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, flags)
}
