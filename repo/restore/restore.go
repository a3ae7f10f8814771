package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/trace"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/directio"
	"memento/repo/pitr"
	"memento/repo/slabmem"
)

// RestoreOptions tune a restore.
type RestoreOptions struct {
	Progress *repo.Progress
	// Workers is how many files are written at once (default 2); each file
	// also fetches its chunks ahead in parallel.
	Workers int
	// Files, if set, is shared by restores running at once: it bounds the
	// files all of them write at once (each also within Workers) and
	// starts the largest waiting first (FileGate).
	Files *FileGate
	// Mode says, for a space snapshot restored into a data dir, whether
	// archiving continues from the target (Continue: the identity is kept,
	// a restore before the end of the snapshot's timeline leaves a pending
	// fork) or it is a scratch copy (Scratch, the default).
	Mode IdentityMode
	// Filter restores only part of a plain snapshot (nil: all of it).
	// A space snapshot is restored whole: Restore refuses a filter for
	// one (ErrPartialSpace).
	Filter *Filter
	// SkipDamaged restores every file that reads and verifies and leaves
	// out the damaged ones, keeping the incomplete result in place: see
	// PartialError.
	SkipDamaged bool
	// ForceTarget restores into a target that would otherwise be
	// refused (ErrUnsafeTarget): the root, the home directory, the
	// current directory or one above it, when not empty.
	ForceTarget bool
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
	// InPlace says the target was an existing empty directory (or mount
	// point) that the restore filled in place.
	InPlace bool `json:"in_place,omitempty"`
	// Damaged lists what a SkipDamaged restore left out.
	Damaged []DamagedPath `json:"damaged,omitempty"`
	// NotRestored lists what the target could not take (a device node
	// without root, an extended attribute the file system
	// refuses), one line each; everything else is restored (meta.go).
	NotRestored []string `json:"not_restored,omitempty"`
}

// Restore writes a snapshot to target. Everything is written into a temporary
// sibling first and every chunk and file is verified while it is written; only
// when all of it verified is it renamed into place. A non-empty target is
// first renamed to target.pre-restore-<time> (a safety copy that costs
// nothing and keeps every original inode), never overwritten.
// An existing empty directory or mount point is filled in place instead
// (target.go); a non-empty dangerous target is refused (ErrUnsafeTarget).
// opts.Filter restores part of a plain snapshot; opts.SkipDamaged keeps
// what reads correctly and returns a *PartialError naming the rest.
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
	if sn.Space != "" && !opts.Filter.Empty() {
		return nil, fmt.Errorf("%w: snapshot %s is of space %s, which is restored whole (part of a database is not one); read single files with 'memento mount'", ErrPartialSpace, sn.ShortID(), sn.Space)
	}
	rs := &restorer{r: r, sn: sn, opts: opts, filter: opts.Filter}
	var release func()
	rs.mem, release = opts.Files.memFor()
	defer release() // every file writer and stream of rs has ended by then
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
	res.InPlace = rs.inPlace
	res.Files, res.Dirs, res.Bytes, res.NotRestored = rs.files-rs.damagedFiles, rs.dirs, rs.bytes-rs.damagedBytes, rs.missing
	res.Seconds = time.Since(start).Seconds()
	if len(rs.damaged) > 0 {
		res.Damaged = rs.damaged
		return res, &PartialError{Target: target, Damaged: rs.damaged}
	}
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
// restores: it creates a staging directory beside spec.dest (inside it,
// when it is an existing empty directory or mount point: see target.go),
// lets fill
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
	plan, err := planTarget(dest, rs.opts.ForceTarget, rs.r.Logger())
	if err != nil {
		return "", err
	}
	var stage *staging
	if plan.inPlace {
		stage, err = newStaging(dest, inPlacePrefix+spec.kind, rs.r.Logger())
	} else {
		stage, err = newStaging(filepath.Dir(dest), "."+filepath.Base(dest)+spec.kind, rs.r.Logger())
	}
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
	if spec.dirNode != nil && !plan.inPlace {
		setOwner(tmp, spec.dirNode)
		rs.setXattrs(spec.dirNode, tmp, "spaces/"+rs.sn.Space)
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
		region := trace.StartRegion(ctx, "restore sync")
		err := makeDurable(stage, metaTmp)
		region.End()
		if err != nil {
			return fail(err)
		}
	}
	if spec.beforeSwap != nil {
		if err := spec.beforeSwap(); err != nil {
			return fail(err)
		}
	}
	var safety string
	if plan.inPlace {
		rs.inPlace = true
		err = moveInPlace(stage, dest)
		if err == nil && spec.dirNode != nil {
			if err := setDirMeta(dest, spec.dirNode); err != nil {
				return "", err // the result is in place; only its mode or mtime is off
			}
		}
	} else {
		safety, err = swapIntoPlace(stage, dest)
	}
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

	filter  *Filter // the paths to restore (nil: all)
	inPlace bool    // the swap filled an existing empty directory

	rootOnce sync.Once
	isRoot   bool // the process runs as root: owners are restored

	mu                         sync.Mutex
	zeroIDs                    map[uint32]chunk.ID // IDs of chunks of n zeros, see planFetch
	missing                    []string            // what could not be restored (notRestored)
	damaged                    []DamagedPath       // left out by SkipDamaged
	damagedFiles, damagedBytes uint64

	replays *semaphore.Weighted // PITROptions.Replays

	mem *slabmem.Mem // the buffers of its runs, plaintexts and file writes (nil: the heap's)
}

// locateBatch is how many chunks restoreDir looks up in one index
// transaction (a quarter as many files at most).
const locateBatch = 4096

type fileJob struct {
	n         *repo.Node
	path, rel string
}

// job is a worker's job: a file, or the files of one group (group.go).
type job struct {
	file  fileJob
	group *groupJob
}

// restoreDir recreates a tree below dir (which exists). Files are written by a
// pool of workers; directory metadata is applied last, deepest first, so that
// read-only directories and mtimes come out right.
func (rs *restorer) restoreDir(ctx context.Context, tree chunk.ID, dir, rel string) error {
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan job, 64)
	for range rs.opts.Workers {
		g.Go(func() error {
			for j := range jobs {
				if j.group != nil {
					if err := rs.restoreGroup(gctx, j.group); err != nil {
						return err
					}
					continue
				}
				release, err := rs.opts.Files.acquire(gctx, j.file.n.Size)
				if err != nil {
					return err
				}
				err = rs.restoreFile(gctx, j.file.n, j.file.path, j.file.rel)
				release()
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	type dirMeta struct {
		n         *repo.Node
		path, rel string
	}
	var metas []dirMeta
	firstLink := map[linkKey]string{} // a hard-link group's first name
	var links []pendingLink
	// Files go to the workers in batches whose chunks were looked up in
	// the index together (Locate keeps the answers, so each file's own
	// lookup costs nothing): one index transaction per batch rather than
	// one per file. Each opens and maps the index file; on the Go source
	// tree (11,478 files) the per-file transactions were 60 % of a
	// restore's CPU. A chunk the index lacks is reported by its file.
	// The small files whose chunk is a member of a group (format 6) are
	// restored with the other members of their group (group.go).
	var batch []fileJob
	var batchIDs []chunk.ID
	groups := &groupPlan{rs: rs, pending: map[chunk.ID]*groupJob{}}
	send := func(due []job) error {
		for _, j := range due {
			select {
			case jobs <- j:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	}
	flush := func() error {
		var locs map[chunk.ID]index.Location
		if len(batchIDs) > 0 {
			locs, _ = rs.r.Locate(rs.sn.Space, batchIDs)
		}
		due := make([]job, 0, len(batch))
		var members []memberFile
		for _, j := range batch {
			if loc, ok := memberCandidate(j, locs); ok {
				members = append(members, memberFile{job: j, id: j.n.Content[0], loc: loc})
			} else {
				due = append(due, job{file: j})
			}
		}
		if len(members) > 0 {
			more, err := groups.add(gctx, members)
			if err != nil {
				return err
			}
			due = append(due, more...)
		}
		batch, batchIDs = batch[:0], batchIDs[:0]
		return send(due)
	}
	// walk returns how many entries it restored below dir, or -1 when
	// dir's tree is damaged and skipped (SkipDamaged). sel says a
	// directory above matched an include pattern.
	var walk func(id chunk.ID, dir, rel string) (int, error)
	walk = func(id chunk.ID, dir, rel string) (int, error) {
		t, err := rs.r.LoadTree(gctx, rs.sn.Space, id)
		if err != nil {
			if rel != "" && rs.skippable(err) {
				rs.noteDamaged("dir", rel, 0, &blobError{id: id, err: err})
				return -1, nil
			}
			return 0, fmt.Errorf("snapshot %s: %s: %w", rs.sn.ShortID(), repo.DisplayRel(rel), err)
		}
		count := 0
		for _, n := range t.Nodes {
			p := filepath.Join(dir, n.Name) // n.Name was validated by decodeTree
			nrel := repo.JoinRel(rel, n.Name)
			if rs.filter.Excluded(nrel) {
				continue
			}
			nsel := rs.filter.Included(nrel) // covers the directories above: a negated include may take back part of one
			if !nsel && n.Type != repo.NodeDir {
				continue // a directory is looked into: an include may match below
			}
			switch n.Type {
			case repo.NodeDir:
				if err := os.Mkdir(p, 0o700); err != nil {
					return 0, fmt.Errorf("restore %s: %w", p, err)
				}
				k, err := walk(*n.Subtree, p, nrel)
				if err != nil {
					return 0, err
				}
				if k < 0 || (k == 0 && !nsel) { // damaged, or nothing selected below
					if err := os.Remove(p); err != nil {
						return 0, fmt.Errorf("restore %s: %w", p, err)
					}
					continue
				}
				rs.dirs++
				metas = append(metas, dirMeta{n, p, nrel})
			case repo.NodeSymlink:
				if err := os.Symlink(n.LinkTarget, p); err != nil {
					return 0, fmt.Errorf("restore %s: %w", p, err)
				}
				setOwner(p, n)
				rs.setXattrs(n, p, nrel)
				setTimes(p, n, true)
			case repo.NodeFIFO, repo.NodeSocket, repo.NodeCharDev, repo.NodeBlockDev:
				made, err := rs.restoreSpecial(n, p, nrel)
				if err != nil {
					return 0, err
				}
				if made {
					if err := rs.setSpecialMeta(n, p, nrel); err != nil {
						return 0, err
					}
				}
			case repo.NodeFile:
				rs.files++ // a hard link too: a name of a file
				if n.HardLinked() {
					k := linkKey{n.DeviceID, n.Inode}
					if first, ok := firstLink[k]; ok {
						links = append(links, pendingLink{first, p})
						count++
						continue
					}
					firstLink[k] = p
				}
				rs.bytes += n.Size
				batch = append(batch, fileJob{n, p, nrel})
				batchIDs = append(batchIDs, n.Content...)
				if len(batchIDs) >= locateBatch || len(batch) >= locateBatch/4 {
					if err := flush(); err != nil {
						return 0, err
					}
				}
			}
			count++
		}
		return count, nil
	}
	_, werr := walk(tree, dir, rel)
	if werr == nil {
		werr = flush()
	}
	if werr == nil {
		werr = send(groups.rest())
	}
	close(jobs)
	if err := g.Wait(); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	if err := rs.linkPending(links); err != nil {
		return err
	}
	for i := len(metas) - 1; i >= 0; i-- {
		setOwner(metas[i].path, metas[i].n)
		rs.setXattrs(metas[i].n, metas[i].path, metas[i].rel)
		if err := setDirMeta(metas[i].path, metas[i].n); err != nil {
			return err
		}
	}
	return nil
}

// root reports whether the process runs as root (and restores owners).
func (rs *restorer) root() bool {
	rs.rootOnce.Do(func() { rs.isRoot = os.Geteuid() == 0 })
	return rs.isRoot
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
