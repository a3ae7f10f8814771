package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/engram"
	"memento/index"
	"memento/repo"
	"memento/repo/pathmatch"
)

// BackupOptions say what to back up and how to describe it.
type BackupOptions struct {
	// Space, with DataDir, backs up one Engram space: the snapshot holds
	// metadata.json and spaces/<Space>/, i.e. a data dir with that one space.
	Space   string
	DataDir string
	// Paths, without Space, back up files and directories. With FullPaths
	// the snapshot holds each by its absolute path (repo.LayoutFull, what
	// the command line writes); without, each becomes a top-level entry
	// named by its base name (the first layout).
	Paths     []string
	FullPaths bool
	// Exclude leaves out what it matches, matched against the absolute
	// path (path backups only; see pathmatch).
	Exclude pathmatch.Set
	// OneFileSystem keeps a path backup on the file system of each path:
	// a directory where another file system is mounted is stored empty.
	OneFileSystem bool
	// Stdin, with StdinName, backs up what it yields as one file of that
	// name at the snapshot's top level, streamed (never held in memory).
	Stdin     io.Reader
	StdinName string
	// DryRun reads and chunks everything as a backup would and counts
	// what it would add, but writes nothing to the repository: no pack,
	// index, snapshot or lock. Backup then returns an unsaved snapshot
	// (zero ID) holding the figures.
	DryRun bool

	Host string
	Tags []string
	// Parent is the snapshot to compare with; nil picks the latest snapshot of
	// the same space (or the same paths). NoParent reads every file.
	Parent   *repo.Snapshot
	NoParent bool
	// Pipeline is shared by concurrent backups; nil makes a private one.
	Pipeline *chunk.Pipeline
	Progress *repo.Progress
	// Locked says the caller holds a shared repository lock for this
	// backup and ctx is (derived from) that lock's Context: the spaces of
	// one `backup --all` share one lock instead of writing, refreshing
	// and removing one each. Backup then takes no lock of its own; losing
	// the caller's still stops it before its snapshot (repo.LockHeld).
	Locked bool
	// Engram is stored in the manifest as given (WAL positions, digest).
	Engram *repo.EngramInfo
	// BeforeDir, if set, is called before the archiver reads a directory
	// (relative path, "" for the root). The WAL archiving code uses it to record
	// the WAL position between reading the tiers and reading wal/.
	BeforeDir func(rel string) error
	// Redirect, if set, may name another path to read for the entry at rel
	// (relative to the snapshot root): a quiesced Engram backup reads the
	// tiers it copied while the database was paused (EngramRecorder).
	Redirect func(rel string) string
	// latest, set by BackupSpace, is the newest snapshot of Space in the
	// catalog (verified), which it read already: when its paths and layout
	// are this backup's it is the parent findParent would pick, and the
	// catalog is not read again.
	latest *repo.Snapshot
	// AfterFiles, if set, is called once every file has been read, before
	// the manifest is written; an error aborts the backup without a
	// snapshot. An Engram backup waits there for the WAL replay it started
	// in BeforeDir, so that the replay runs while the files are read.
	AfterFiles func() error
	// smallSave, set only by tests, is called by a worker (a small-file
	// worker, or saveFile's) with each file's relative path before it
	// opens the file.
	smallSave func(rel string)
}

// maxConcurrentFiles bounds how many files a backup reads at once: enough to
// hide per-file latency on many small files; large files are parallel inside.
const maxConcurrentFiles = 4

// maxConcurrentSmallFiles bounds how many small files (shorter than their
// chunk parameters' Min, so one chunk: saveSmallFile) a backup reads at
// once, besides maxConcurrentFiles larger ones. Each is read whole into a
// buffer of its size (at most smallFileMax: 16 MiB for 32)
// and compressed by the goroutine that read it, so the reads of a cold page
// cache (a disk wait each) overlap each other and the compression of the
// files read before; only one compression per core runs at once.
const maxConcurrentSmallFiles = 32

// smallFileMax: a file is small (read whole, saveSmallFile) when it is
// shorter than its chunk parameters' Min and than this; a larger one (a
// cold segment of an Engram space, whose Min is 2 MiB) is streamed.
const smallFileMax = 512 << 10

// maxConcurrentDirs bounds how many directories a path backup walks at once
// besides the walk's own goroutine (saveDirs).
const maxConcurrentDirs = 8

type archiver struct {
	r        Repository
	space    string
	key      chunk.Key
	pipe     *chunk.Pipeline
	params   chunk.ParamSet // the repository's
	packer   *repo.Packer
	known    map[chunk.ID]struct{}
	prog     *repo.Progress
	sem      chan struct{}
	dirSem   chan struct{} // nil: directories one at a time (saveDirs)
	before   func(string) error
	redirect func(string) string
	// follow names the entries (relative paths) read as the directory a
	// symlink there points to: an Engram space's directory, its wal/ and
	// tiers (symlinkedDirs). followed lists what was followed, for the summary.
	follow   map[string]bool
	followed []string

	// smallJobs feeds the maxConcurrentSmallFiles small-file workers
	// (smallWorker), which run while Backup does.
	smallJobs chan smallJob
	smallSave func(rel string) // BackupOptions.smallSave
	// batches, when set (path backups), reads the small files of a
	// directory in batches (readBatch) before the workers compress them.
	batches *batchReader

	exclude pathmatch.Set
	oneFS   bool
	dryRun  bool
	claimed sync.Map // chunk.ID -> struct{}: a dry run's new chunks, counted once
	// deltas is set when new chunks of files cut at fixed offsets may be
	// stored as deltas of the parent's (format 4: delta.go).
	deltas      deltaRepo
	deltaChunks atomic.Uint64
	// groups, when small files are stored as members of group blobs
	// (format 6, path backups: group.go), holds the open groups the
	// small-file workers take turns to fill; groupSize is the plaintext
	// bytes at which a group is stored (repo.GroupSize), addGroup
	// SplitSmallGrouped's hook.
	groups    chan *fileGroup
	groupSize int
	addGroup  func(chunk.ID, []byte) (bool, error)

	files, dirs, links, special, excluded, bytes, unchanged, chunks, newChunks, newBytes atomic.Uint64

	// roots are the backup's top items, from which listDir may look a
	// directory up again (reachedFromRoot).
	roots []item

	// ahead holds parent trees read ahead of the walk (ahead.go).
	ahead treeAhead

	// noListxattrat: listxattrat(2) is not available (entry.noAt).
	noListxattrat atomic.Bool
}

// item is one directory entry to save: its name in the tree and its path on
// disk. only, for directories, restricts which children are saved.
type item struct {
	name, path string
	only       []string
	// sel, if not nil, names the only children to read (fullPathRoots).
	sel        selection
	redirected bool // path is BackupOptions.Redirect's: read as it is
	// source is set on what the sources hold, not on the directories
	// above them: filters apply there. dev is the device of the source it
	// is in (0 until its top is read), for OneFileSystem.
	source bool
	dev    uint64
	// id is the directory's device and inode as the walk's lstat found
	// them (zero: not a directory the walk looked up); parent is its
	// directory's (zero: a source, or below a selection). The listing
	// checks them (listDir).
	id, parent dirID
}

// Backup saves a snapshot. On any error nothing is referenced by a new
// manifest: packs already uploaded are recorded in an index file (so the next
// backup reuses them) but no snapshot is written.
func Backup(ctx context.Context, r Repository, opts BackupOptions) (*repo.Snapshot, error) {
	start := time.Now()
	if opts.Space != "" && (len(opts.Exclude) > 0 || opts.OneFileSystem || opts.Stdin != nil || opts.DryRun) {
		return nil, errors.New("excludes, one-file-system, stdin and dry run apply to path backups: a space is backed up whole")
	}
	var roots []item
	var paths []string
	var err error
	switch {
	case opts.Stdin != nil:
		if err := repo.ValidName(opts.StdinName); err != nil {
			return nil, fmt.Errorf("stdin file name: %w", err)
		}
		paths = []string{"/" + opts.StdinName}
	case opts.FullPaths && opts.Space == "":
		if len(opts.Paths) == 0 {
			return nil, errors.New("nothing to back up: give paths or a space")
		}
		roots, paths, err = fullPathRoots(opts.Paths)
	default:
		roots, paths, err = backupRoots(opts)
	}
	if err != nil {
		return nil, err
	}
	if !opts.DryRun && !opts.Locked {
		lock, err := r.Lock(ctx, false, "backup")
		if err != nil {
			return nil, err
		}
		defer lock.Unlock()
		ctx = lock.Context() // cancelled if the lock is lost
	}
	layout := ""
	if opts.FullPaths && opts.Space == "" {
		layout = repo.LayoutFull
	}

	parent := opts.Parent
	if l := opts.latest; parent == nil && !opts.NoParent && l != nil && l.Space == opts.Space && slices.Equal(l.Paths, paths) && l.Layout == layout {
		parent = l
	} else if parent == nil && !opts.NoParent {
		parent, err = findParent(ctx, r, opts.Space, paths, layout)
		if err != nil {
			return nil, err
		}
	}
	known, err := r.KnownBlobs(ctx, opts.Space)
	if err != nil {
		return nil, err
	}
	pipe := opts.Pipeline
	if pipe == nil {
		pipe = chunk.NewPipeline(0, chunk.DefaultLevel)
		defer pipe.Close()
	}
	// Stored form 0x03 only where every reader of the repository knows it.
	pipe.UseHuffPlanes(r.Config().HuffPlanes())
	pipe.UseWALRecords(r.Config().WALRecords())
	prog := opts.Progress
	if prog == nil {
		prog = &repo.Progress{}
	}
	a := &archiver{r: r, space: opts.Space, key: r.ChunkKey(opts.Space), pipe: pipe, params: r.Config().ParamSet(), known: known,
		prog: prog, sem: make(chan struct{}, maxConcurrentFiles), smallJobs: make(chan smallJob), smallSave: opts.smallSave, before: opts.BeforeDir, redirect: opts.Redirect,
		packer: r.NewPacker(ctx, opts.Space), follow: symlinkedDirs(opts.Space),
		exclude: opts.Exclude, oneFS: opts.OneFileSystem, dryRun: opts.DryRun, roots: roots}
	if opts.Space == "" && opts.BeforeDir == nil && opts.Redirect == nil {
		a.dirSem = make(chan struct{}, maxConcurrentDirs)
		a.batches = newBatchReader()
		defer a.batches.close() // after the workers are done (deferred before it)
	}
	if dr, ok := r.(deltaRepo); ok && r.Config().DeltaBlobs() {
		a.deltas = dr
	}
	// An Engram space's small files (its hot tier, checkpoint, metadata:
	// a few KiB a space, rewritten by every checkpoint) are not grouped:
	// a group would save nothing and be rewritten by every backup.
	if r.Config().GroupedFiles() && opts.Space == "" {
		a.startGroups(repo.GroupSize(r.Config().PackSize), openGroups())
	}
	var smallWorkers sync.WaitGroup
	for range maxConcurrentSmallFiles {
		smallWorkers.Go(a.smallWorker)
	}
	// endSmall stops the small-file workers, every job being done once the
	// walk returns. It runs before the packer's Flush or Abort.
	endSmall := sync.OnceFunc(func() {
		close(a.smallJobs)
		smallWorkers.Wait()
	})
	defer endSmall()

	var parentRoot *parentTree
	if parent != nil {
		if t, err := r.LoadTree(ctx, parent.Space, parent.Root); err != nil {
			r.Logger().Warn("parent snapshot unreadable, reading every file", "snapshot", parent.ShortID(), "err", err)
		} else {
			parentRoot = &parentTree{Tree: t, id: parent.Root}
		}
	}
	werr := a.beforeDir("")
	var root chunk.ID
	if werr == nil {
		if opts.Stdin != nil {
			root, werr = a.saveStdin(ctx, opts.Stdin, opts.StdinName)
		} else {
			root, werr = a.saveItems(ctx, roots, parentRoot, "", -1)
		}
	}
	endSmall()
	if werr == nil && ctx.Err() == nil {
		// Every file is read: the open groups go to the packer now. After
		// a failure they are dropped: their members were claimed
		// (Packer.Claim) but never added, so no index lists them.
		werr = a.storeOpenGroups()
	}
	if werr == nil && opts.AfterFiles != nil {
		werr = opts.AfterFiles()
	}
	var packs []index.PackInfo
	var stored int64
	switch {
	case werr != nil || opts.DryRun:
		packs = a.packer.Abort() // a dry run added nothing to it
		// A pack write that failed stopped the walk (addChunk): the
		// backup fails with that error, as Flush returns it.
		if perr := a.packer.Err(); perr != nil && (errors.Is(werr, perr) || errors.Is(werr, context.Canceled) && ctx.Err() == nil) {
			werr = perr
		}
	default:
		packs, stored, werr = a.packer.Flush()
	}
	// Record what reached the repository even on failure, so it is reused.
	if !opts.DryRun {
		if ierr := r.SaveIndex(context.WithoutCancel(ctx), packs); ierr != nil && werr == nil {
			werr = ierr
		}
		if werr == nil {
			werr = repo.LockHeld(ctx) // a lost lock, or interrupted after the last file: no snapshot
		}
	}
	if werr == nil {
		werr = ctx.Err()
	}
	if werr != nil {
		return nil, werr
	}
	tags, err := lineTags(opts)
	if err != nil {
		return nil, err
	}
	m := &repo.Manifest{Time: start.UTC(), Host: opts.Host, Tags: repo.WithDamage(tags, opts.Engram), Space: opts.Space, Paths: paths, Layout: layout, Root: root, Engram: opts.Engram}
	if m.Host == "" {
		m.Host, _ = os.Hostname()
	}
	if u, err := user.Current(); err == nil {
		m.Username = u.Username
	}
	if parent != nil {
		m.Parent = parent.ID.String()
	}
	m.Summary = repo.Summary{Files: a.files.Load(), Dirs: a.dirs.Load(), Symlinks: a.links.Load(), Special: a.special.Load(), Bytes: a.bytes.Load(),
		UnchangedFiles: a.unchanged.Load(), Chunks: a.chunks.Load(), NewChunks: a.newChunks.Load(),
		NewBytes: a.newBytes.Load(), StoredBytes: uint64(stored), Excluded: a.excluded.Load(), Seconds: time.Since(start).Seconds()}
	if opts.DryRun {
		return &repo.Snapshot{Manifest: *m}, nil
	}
	sn, err := r.SaveSnapshot(context.WithoutCancel(ctx), m)
	if sn != nil {
		sn.Followed = a.followed
	}
	if d := m.Damage(); err == nil && len(d) > 0 {
		return sn, fmt.Errorf("snapshot %s saved with every byte as it is, but marked damaged: %s (%w)", sn.ShortID(), strings.Join(d, "; "), repo.ErrMarkedDamaged)
	}
	return sn, err
}

// symlinkedDirs are the entries of a space backup that may be symlinks to
// directories (the whole space, its WAL or a tier kept on another disk): the
// backup stores the directory they point to, as a directory, since a restore
// refuses a symlink there (spaceSubdirs). Anything else a symlink points to
// there is refused (followLink). A path backup follows no symlink.
func symlinkedDirs(space string) map[string]bool {
	if space == "" {
		return nil
	}
	sd := "spaces/" + space
	m := map[string]bool{sd: true}
	for _, name := range engram.SpaceSubdirs {
		m[sd+"/"+name] = true
	}
	return m
}

// followLink returns what the symlink at it (one of symlinkedDirs) points to,
// which must be a directory, and records it for the summary.
func (a *archiver) followLink(it item, relPath string) (fs.FileInfo, error) {
	target, err := os.Readlink(it.path)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", it.path, err)
	}
	fi, err := os.Stat(it.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("backup %s: %w: a symlink to %s, which does not exist (a space's directory, its wal/ and its tiers must be directories)", it.path, repo.ErrNotFound, target)
	case err != nil:
		return nil, fmt.Errorf("backup %s: symlink to %s: %w", it.path, target, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("backup %s: a symlink to %s, which is not a directory (a space's directory, its wal/ and its tiers must be directories)", it.path, target)
	}
	a.followed = append(a.followed, relPath+" -> "+target)
	a.r.Logger().Info("backing up the directory a symlink points to", "path", it.path, "target", target)
	return fi, nil
}

// backupRoots turns options into the top-level items of the snapshot.
func backupRoots(opts BackupOptions) ([]item, []string, error) {
	if opts.Space != "" {
		if err := engram.ValidSpaceID(opts.Space); err != nil {
			return nil, nil, err
		}
		dd, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, nil, err
		}
		sd := filepath.Join(dd, "spaces", opts.Space)
		if fi, err := os.Stat(sd); err != nil || !fi.IsDir() {
			return nil, nil, fmt.Errorf("space %s: %w: no directory %s", opts.Space, repo.ErrNotFound, sd)
		}
		items := []item{}
		if _, err := os.Lstat(filepath.Join(dd, "metadata.json")); err == nil {
			items = append(items, item{name: "metadata.json", path: filepath.Join(dd, "metadata.json")})
		}
		items = append(items, item{name: "spaces", path: filepath.Join(dd, "spaces"), only: []string{opts.Space}})
		return items, []string{sd}, nil
	}
	if len(opts.Paths) == 0 {
		return nil, nil, errors.New("nothing to back up: give paths or a space")
	}
	var items []item
	var paths []string
	seen := map[string]string{}
	for _, p := range opts.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, err
		}
		if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("backup source %s: %w: no such file or directory", p, repo.ErrNotFound)
		} else if err != nil {
			return nil, nil, fmt.Errorf("backup source %s: %w", p, err)
		}
		name := filepath.Base(abs)
		if name == "/" || name == "." {
			return nil, nil, fmt.Errorf("backup source %s: %w: back up its contents instead of the root", p, repo.ErrInvalidArgument)
		}
		if other, dup := seen[name]; dup {
			return nil, nil, fmt.Errorf("backup sources %s and %s: %w: they have the same name %q (back up their parents, or one at a time)", other, p, repo.ErrInvalidArgument, name)
		}
		seen[name] = p
		items = append(items, item{name: name, path: abs, source: true})
		paths = append(paths, abs)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
	sort.Strings(paths)
	return items, paths, nil
}

func findParent(ctx context.Context, r Repository, space string, paths []string, layout string) (*repo.Snapshot, error) {
	all, err := r.SnapshotsOf(ctx, space)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Space == space && slices.Equal(all[i].Paths, paths) && all[i].Layout == layout {
			return all[i], nil
		}
	}
	return nil, nil
}

// saveItems saves one directory level and returns its tree ID. Files are read
// first (concurrently), then subdirectories in order, with a directory named
// "wal" last: for an Engram space that makes the WAL the last thing read, so
// it covers everything the tiers hold (docs/pitr.md).
// beforeDir calls the BeforeDir hook. It runs before the directory is
// listed, so that what the hook records (an Engram space's WAL segments) is
// never newer than the listing the backup reads.
func (a *archiver) beforeDir(rel string) error {
	if a.before == nil {
		return nil
	}
	return a.before(rel)
}

// parentTree is a tree of the parent snapshot and its ID.
type parentTree struct {
	*repo.Tree
	id chunk.ID
}

// saveItems saves items, the entries of directory rel, and returns the ID
// of its tree. dir, if not -1, is the directory's descriptor, from which
// items' names are looked up (entry); saveItems closes it once the
// entries are walked, before the subdirectories.
func (a *archiver) saveItems(ctx context.Context, items []item, parent *parentTree, rel string, dir int) (chunk.ID, error) {
	nodes := make([]*repo.Node, len(items))
	var dirs []int
	// Files are saved by goroutines; an error found while walking items must
	// stop and wait for them before returning, or they would add to a packer
	// that the caller is about to abort.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(wctx)
	// Small files go to the archiver's small-file workers (smallWorker);
	// the first to fail stops the walk as one in g does.
	var small sync.WaitGroup
	var smallMu sync.Mutex
	var smallErr error
	smallDone := func(err error) {
		if err != nil {
			smallMu.Lock()
			if smallErr == nil {
				smallErr = err
			}
			smallMu.Unlock()
			cancel()
		}
		small.Done()
	}
	// batch holds small files read together (batchReader) once it is
	// full or the directory's entries are all seen.
	var batch smallBatch
	// dh keeps the directory open for the workers that open its files
	// after the walk (dirHandle); the walk's own hold ends with it.
	var dh *dirHandle
	if dir >= 0 {
		dh = newDirHandle(dir)
	}
	sendSmall := func(j smallJob) bool {
		small.Add(1)
		if j.name != "" && j.data == nil {
			j.dirh = dh.hold()
		}
		select {
		case a.smallJobs <- j:
			return true
		case <-gctx.Done():
			j.release()
			small.Done()
			return false
		}
	}
	flush := func() error {
		jobs, err := a.batches.read(gctx, &batch, a.openFailed)
		if err != nil {
			return err // a file that cannot be opened
		}
		for k, j := range jobs {
			if !sendSmall(j) {
				for _, j := range jobs[k+1:] {
					j.release()
				}
				return nil // a file failed: reported below
			}
		}
		return nil
	}
	walkErr := func() error {
		for i, it := range items {
			if err := ctx.Err(); err != nil {
				return nil
			}
			if it.source && excludedPath(a.exclude, it.path) {
				a.excluded.Add(1)
				continue
			}
			e := entry{dir: -1, name: it.name, path: it.path, noAt: &a.noListxattrat}
			if !it.redirected {
				e.dir = dir
			}
			fi, err := e.lstat()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && rel != "" {
					a.r.Logger().Warn("file vanished during backup, skipped", "path", it.path)
					continue
				}
				return fmt.Errorf("backup %s: %w", it.path, err)
			}
			relPath := repo.JoinRel(rel, it.name)
			if fi.Mode()&fs.ModeSymlink != 0 && a.follow[relPath] && !it.redirected {
				if fi, err = a.followLink(it, relPath); err != nil {
					return err
				}
			}
			n := nodeFromInfo(it.name, fi)
			if n == nil {
				return fmt.Errorf("backup %s: file type %s cannot be backed up", it.path, fi.Mode().Type())
			}
			var pn *repo.Node
			if parent != nil {
				pn = parent.Find(it.name)
			}
			if pn != nil && pn.Type == n.Type && pn.CTimeNS == n.CTimeNS && pn.Inode == n.Inode && n.CTimeNS != 0 {
				n.Xattrs = pn.Xattrs // setting an attribute changes the ctime
			} else if n.Xattrs, err = readXattrs(e); err != nil {
				return err
			}
			nodes[i] = n
			switch {
			case fi.IsDir():
				a.dirs.Add(1)
				dirs = append(dirs, i)
				items[i].id = statID(fi)
				if st, ok := fi.Sys().(*syscall.Stat_t); ok && it.source && a.oneFS {
					if items[i].dev == 0 {
						items[i].dev = st.Dev
					} else if st.Dev != it.dev {
						items[i].only = []string{} // a mount point: stored empty
						a.r.Logger().Info("another file system is mounted here: stored as an empty directory", "path", it.path)
					}
				}
			case fi.Mode()&fs.ModeSymlink != 0:
				a.links.Add(1)
				if n.LinkTarget, err = e.readlink(); err != nil {
					return fmt.Errorf("backup %s: %w", it.path, err)
				}
			case fi.Mode().IsRegular():
				a.files.Add(1)
				a.prog.Files.Add(1)
				if unchanged(pn, n) && a.allKnown(pn.Content) {
					n.Content, n.BLAKE3 = pn.Content, pn.BLAKE3
					a.bytes.Add(n.Size)
					a.chunks.Add(uint64(len(n.Content)))
					a.unchanged.Add(1)
					a.prog.Unchanged.Add(1)
					a.prog.Bytes.Add(int64(n.Size))
					continue
				}
				if params := a.params.For(relPath); n.Size < uint64(min(params.Min, smallFileMax)) {
					j := smallJob{ctx: gctx, path: it.path, rel: relPath, n: n, params: params, done: smallDone}
					if e.dir >= 0 {
						j.dir, j.name = e.dir, e.name
					}
					if st, ok := fi.Sys().(*syscall.Stat_t); ok {
						j.dev = uint64(st.Dev)
					}
					taken, full := a.batches.add(&batch, j)
					if full {
						if err := flush(); err != nil {
							return err
						}
						taken, _ = a.batches.add(&batch, j)
					}
					if taken {
						continue
					}
					if !sendSmall(j) {
						return nil // a file failed: reported below
					}
					continue
				}
				select {
				case a.sem <- struct{}{}:
				case <-gctx.Done():
					return nil // a file failed: g.Wait reports it
				}
				var blocks int64 = -1 // unknown: not read as sparse
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					blocks = st.Blocks
				}
				in := fileIn{dir: -1}
				if e.dir >= 0 {
					in = fileIn{dir: e.dir, name: e.name, h: dh.hold()}
				}
				g.Go(func() error {
					defer func() { <-a.sem }()
					defer in.h.release()
					return a.saveFile(gctx, it.path, relPath, in, n, blocks, a.deltaPrev(relPath, pn))
				})
			default: // a FIFO, socket or device node: its node says it all
				a.special.Add(1)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		return flush()
	}()
	dh.release() // no batch of this directory is left to open: the workers' files hold it

	// waitFiles waits for the files of this directory that are being
	// read and saved (their nodes are complete after it) and returns the
	// first failure among them.
	waitFiles := func() error {
		small.Wait() // before g.Wait, which cancels gctx, the small jobs' context
		gerr := g.Wait()
		if gerr != nil && (smallErr == nil || !errors.Is(gerr, context.Canceled)) {
			return gerr
		}
		return smallErr
	}
	if walkErr != nil {
		cancel()
		waitFiles()
		return chunk.ID{}, walkErr
	}
	if err := ctx.Err(); err != nil {
		cancel()
		waitFiles()
		return chunk.ID{}, err
	}
	sort.SliceStable(dirs, func(x, y int) bool { return items[dirs[x]].name != "wal" && items[dirs[y]].name == "wal" })
	subtrees := a.parentSubtrees(ctx, parent, items, dirs)
	saveDir := func(ctx context.Context, i int) error {
		it, n := items[i], nodes[i]
		var sub *parentTree
		if pn := parentNode(parent, it.name); pn != nil && pn.Type == repo.NodeDir && pn.Subtree != nil {
			t, ok := subtrees[*pn.Subtree]
			if !ok { // past maxPrefetchedTrees
				t, _ = a.r.LoadTree(ctx, a.space, *pn.Subtree)
			}
			if t != nil {
				sub = &parentTree{Tree: t, id: *pn.Subtree}
			}
		}
		crel := repo.JoinRel(rel, it.name)
		if err := a.beforeDir(crel); err != nil {
			return err
		}
		children, fd, err := a.listDir(it, crel)
		if err != nil {
			return err
		}
		if a.redirect != nil {
			for i := range children {
				if p := a.redirect(repo.JoinRel(crel, children[i].name)); p != "" {
					children[i].path, children[i].redirected = p, true
				}
			}
		}
		id, err := a.saveItems(ctx, children, sub, crel, fd)
		if err != nil {
			return err
		}
		n.Subtree = &id
		return nil
	}
	// A path backup walks the subdirectories while this directory's
	// files are still being saved: a walker that waited for them first
	// (a compression each, queued behind the other walkers' files) left
	// its next directories' disk reads unstarted meanwhile. gctx stops
	// the walk below at the first file that fails. A space backup, whose
	// hooks follow the walk's order, saves a directory's files first.
	dctx := gctx
	if a.dirSem == nil {
		if err := waitFiles(); err != nil {
			return chunk.ID{}, err
		}
		dctx = ctx // gctx ends with g.Wait
	}
	dirErr := a.saveDirs(dctx, dirs, saveDir)
	if dirErr != nil {
		cancel()
	}
	fileErr := waitFiles()
	if dirErr != nil && (fileErr == nil || !errors.Is(dirErr, context.Canceled)) {
		return chunk.ID{}, dirErr
	}
	if fileErr != nil {
		return chunk.ID{}, fileErr
	}
	if err := ctx.Err(); err != nil {
		return chunk.ID{}, err
	}
	t := &repo.Tree{Nodes: make([]*repo.Node, 0, len(nodes))}
	for _, n := range nodes {
		if n != nil && n.Type != "" { // nil: excluded or vanished before its lstat; no type: vanished while read
			t.Nodes = append(t.Nodes, n)
		}
	}
	if id, ok := a.reuseTree(parent, t); ok {
		return id, nil
	}
	return a.saveTree(t)
}

// reuseTree returns the parent's tree ID when t holds exactly the parent
// tree's nodes and the parent tree's pack exists: the tree blob stored for
// the parent is then the one t would be, so an unchanged directory costs
// no encoding and no hashing. (An older memento may have written the same
// nodes as other bytes; the parent's blob still decodes to these nodes.)
func (a *archiver) reuseTree(parent *parentTree, t *repo.Tree) (chunk.ID, bool) {
	if parent == nil || len(parent.Nodes) != len(t.Nodes) {
		return chunk.ID{}, false
	}
	if _, ok := a.known[parent.id]; !ok {
		return chunk.ID{}, false
	}
	for i, n := range t.Nodes {
		if !n.Equal(parent.Nodes[i]) {
			return chunk.ID{}, false
		}
	}
	return parent.id, true
}

// maxPrefetchedTrees bounds the parent subtrees of one directory level
// read ahead in one go (parentSubtrees); the subtrees of a directory with
// more subdirectories than that are read one by one past it.
const maxPrefetchedTrees = 512

// parentSubtrees reads the parent snapshot's trees of the subdirectories
// dirs (indexes into items) of a directory level at once: trees stored side
// by side in a pack come in one read, where reading them as each directory
// is walked cost an open and a read each. A tree that cannot be read maps
// to nil: its directory is then read whole, as without a parent.
func (a *archiver) parentSubtrees(ctx context.Context, parent *parentTree, items []item, dirs []int) map[chunk.ID]*repo.Tree {
	if parent == nil || len(dirs) == 0 {
		return nil
	}
	var ids []chunk.ID
	for _, i := range dirs {
		if pn := parent.Find(items[i].name); pn != nil && pn.Type == repo.NodeDir && pn.Subtree != nil && len(ids) < maxPrefetchedTrees {
			ids = append(ids, *pn.Subtree)
		}
	}
	trees := make(map[chunk.ID]*repo.Tree, len(ids))
	a.ahead.take(ids, trees)
	var missing []chunk.ID
	for _, id := range ids {
		if _, ok := trees[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		loaded := a.r.LoadTrees(ctx, a.space, missing)
		below := make([]*repo.Tree, 0, len(loaded))
		for id, t := range loaded {
			trees[id] = t
			below = append(below, t)
		}
		a.readAhead(ctx, below) // treeAhead (ahead.go)
	}
	for _, id := range ids {
		if _, ok := trees[id]; !ok {
			trees[id] = nil // unreadable: not read again
		}
	}
	return trees
}

// saveDirs calls save for each subdirectory of a directory level (indexes
// into its items). A path backup saves them concurrently, up to
// maxConcurrentDirs across the whole walk: on a small-file tree each
// directory costs a few dependent reads (list it, stat its files, read the
// parent's tree), each a disk wait when the cache is cold, and only
// overlapping directories hides them. A space backup saves them in order:
// its hooks (BeforeDir, Redirect, the symlinks followed) depend on the order
// of the walk, and a data dir has a handful of directories.
func (a *archiver) saveDirs(ctx context.Context, dirs []int, save func(context.Context, int) error) error {
	if a.dirSem == nil {
		for _, i := range dirs {
			if err := save(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, i := range dirs {
		if gctx.Err() != nil {
			break
		}
		select {
		case a.dirSem <- struct{}{}:
			g.Go(func() error {
				defer func() { <-a.dirSem }()
				return save(gctx, i)
			})
		default: // every token is taken: this goroutine saves it (never waits for a token, so never deadlocks)
			if err := save(gctx, i); err != nil {
				if gerr := g.Wait(); gerr != nil {
					return gerr // the first failure, of which err may be the cancellation
				}
				return err
			}
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func parentNode(parent *parentTree, name string) *repo.Node {
	if parent == nil {
		return nil
	}
	return parent.Find(name)
}

// readDirItems lists dir's entries, opening it with flags (dirFlags, with
// O_NOFOLLOW for a directory not read through a symlink: listDir); b, if
// not nil, opens it (batchReader.openFlags). A directory listed is left
// open: fd is its descriptor (-1 if none was listed: a selection), for the
// caller to close (saveItems).
func readDirItems(dir item, b *batchReader, flags int) (_ []item, fd int, _ error) {
	fd = -1
	names := dir.only
	if dir.sel != nil {
		for n := range dir.sel {
			names = append(names, n)
		}
	} else if names == nil {
		// Names only (sorted below): os.ReadDir would make and sort a
		// DirEntry per name, and the walk lstats every entry anyway.
		var err error
		if names, fd, err = readDirNamesOpen(dir.path, flags, b.openFlags); err != nil {
			return nil, -1, fmt.Errorf("backup %s: %w", dir.path, err)
		}
	}
	out := make([]item, 0, len(names))
	for _, n := range names {
		c := item{name: n, path: filepath.Join(dir.path, n), source: dir.source, dev: dir.dev, parent: dir.id}
		if dir.sel != nil {
			c.sel = dir.sel[n]
			c.source = c.sel == nil
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, fd, nil
}

// unchanged reports whether a file can keep the parent snapshot's content
// without being read: same size, mtime, ctime and inode. ctime catches writes
// that restore the mtime; the inode catches a file replaced by rename.
func unchanged(pn, n *repo.Node) bool {
	return pn != nil && pn.Type == repo.NodeFile && pn.BLAKE3 != nil && (pn.Size == 0 || len(pn.Content) > 0) &&
		pn.Size == n.Size && pn.MTimeNS == n.MTimeNS && pn.CTimeNS == n.CTimeNS && pn.Inode == n.Inode
}

// allKnown reports whether every chunk of a parent's content list is in a
// pack that exists: a list that names a lost chunk is not reused, the file is
// read again and the chunk stored again.
func (a *archiver) allKnown(ids []chunk.ID) bool {
	for _, id := range ids {
		if _, ok := a.known[id]; !ok {
			return false
		}
	}
	return true
}

func nodeFromInfo(name string, fi fs.FileInfo) *repo.Node {
	n := &repo.Node{Name: name, Mode: uint32(fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)),
		MTimeNS: fi.ModTime().UnixNano()}
	switch {
	case fi.IsDir():
		n.Type = repo.NodeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		n.Type = repo.NodeSymlink
	case fi.Mode().IsRegular():
		n.Type = repo.NodeFile
		n.Size = uint64(fi.Size())
	default:
		if n.Type = specialType(fi.Mode()); n.Type == "" {
			return nil // none of the kinds a tree holds (irregular files of some network filesystems)
		}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n.UID, n.GID, n.Inode = st.Uid, st.Gid, st.Ino
		n.CTimeNS = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	setLinkFields(n, fi)
	return n
}

// openFailed handles a file that could not be opened: one that vanished
// since it was listed is dropped from its tree (nil error), anything else
// fails the backup.
func (a *archiver) openFailed(fsPath string, n *repo.Node, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		a.r.Logger().Warn("file vanished during backup, skipped", "path", fsPath)
		n.Type = "" // dropped below
		return nil
	}
	return fmt.Errorf("backup %s: %w", fsPath, err)
}

// saveFile streams one file through the chunk pipeline into the packer.
// blocks is its allocated 512-byte blocks as listed (-1: unknown): a file
// with holes is read around them (sparseAware).
func (a *archiver) saveFile(ctx context.Context, fsPath, relPath string, in fileIn, n *repo.Node, blocks int64, prev []chunk.ID) error {
	if err := a.packer.Err(); err != nil {
		// A pack write failed: read no more. A file that failed frees
		// its slot (a.sem) before its error cancels the walk, which may
		// start this one in between.
		return err
	}
	if a.smallSave != nil {
		a.smallSave(relPath)
	}
	f, err := openFile(fsPath, func(string) (int, error) { return a.openIn(in, fsPath) })
	if err != nil {
		return a.openFailed(fsPath, n, err)
	}
	defer f.Close()
	var rd io.Reader = f
	if blocks >= 0 {
		rd = sparseAware(f, int64(n.Size), blocks)
	}
	if err := a.saveReader(ctx, rd, relPath, n, prev); err != nil {
		return fmt.Errorf("backup %s: %w", fsPath, err)
	}
	return nil
}

// smallJob is a small file for a small-file worker to save
// (saveSmallFile); done gets the outcome.
type smallJob struct {
	ctx       context.Context
	path, rel string
	n         *repo.Node
	params    chunk.Params
	done      func(error)
	dev       uint64 // the file's device (batchReader.refused)
	// name, if not "", is the file's name in the directory open as dir
	// while the walk reads its batch (batchReader.read opens it there); a
	// worker opens it there too, dirh holding the directory open for it.
	dir  int
	name string
	dirh *dirHandle
	// data, if not nil, is the whole file, read by batchReader into
	// arena's memory, given back (release) once the job is done.
	data  []byte
	arena *batchArena
}

// release gives back the batch memory the job's data is in.
func (j smallJob) release() {
	if j.arena != nil {
		j.arena.release()
	}
	j.dirh.release()
}

// smallWorker saves small files until the walk is over. The workers live
// as long as the backup, not a goroutine per file: each keeps its buffers
// (smallSlot) and its grown stack from file to file.
func (a *archiver) smallWorker() {
	slot := &smallSlot{}
	for j := range a.smallJobs {
		if a.smallSave != nil {
			a.smallSave(j.rel)
		}
		var err error
		if j.data != nil {
			err = a.saveSmallData(j.ctx, j.path, j.rel, j.n, j.params, j.data, slot)
		} else {
			in := fileIn{dir: -1}
			if j.dirh != nil {
				in = fileIn{dir: j.dir, name: j.name}
			}
			err = a.saveSmallFileIn(j.ctx, j.path, j.rel, in, j.n, j.params, slot)
		}
		j.release()
		j.done(err)
	}
}

// smallSlot is what a small-file worker keeps from file to file: the
// buffers of the file read whole and of its compressed form, for files of
// up to slotKept bytes, so thousands of small files cost no allocation and
// no zeroing of buffers. A larger one takes pooled buffers (chunk.Buffer)
// for its time.
type smallSlot struct {
	data, stored []byte
}

// slotKept is the largest file whose buffers a smallSlot keeps: most files
// of a source tree are smaller (Go's src/: 11,211 of 11,478), and the
// slots of a backup then keep 4 MiB at most.
const slotKept = 64 << 10

// saveSmallFile saves a file that was shorter than params.Min when listed:
// it reads the file whole into the slot's buffer, up to its listed size
// plus one byte (open, read, the read that finds the end, close: one system
// call fewer than a stream, whose os.File asks for the descriptor's flags),
// and hands it to Pipeline.SplitSmall, which stores the one chunk a stream
// that short is cut into, on this goroutine. A file that has grown to fill
// the buffer is streamed on from there (saveReader), as any other file:
// what is stored is always the file as read to its end.
func (a *archiver) saveSmallFile(ctx context.Context, fsPath, relPath string, n *repo.Node, params chunk.Params, slot *smallSlot) error {
	return a.saveSmallFileIn(ctx, fsPath, relPath, fileIn{dir: -1}, n, params, slot)
}

// saveSmallFileIn is saveSmallFile opening the file in, if it names one,
// the directory the walk listed it in (openIn).
func (a *archiver) saveSmallFileIn(ctx context.Context, fsPath, relPath string, in fileIn, n *repo.Node, params chunk.Params, slot *smallSlot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, err := a.openIn(in, fsPath)
	if err != nil {
		return a.openFailed(fsPath, n, err)
	}
	limit := min(int(n.Size)+1, int(params.Min))
	buf, scratch := slot.data, &slot.stored
	if limit > slotKept {
		b := chunk.Buffer(limit)
		defer chunk.PutBuffer(b)
		buf, scratch = *b, nil
	} else if buf == nil {
		buf = make([]byte, 0, slotKept)
		slot.data = buf
	}
	data, full, err := readFD(fd, fsPath, buf, limit)
	if err != nil {
		syscall.Close(fd)
		return fmt.Errorf("backup %s: read at offset %d: %w", fsPath, len(data), err)
	}
	if full { // it grew since it was listed
		f := os.NewFile(uintptr(fd), fsPath)
		defer f.Close()
		if err := a.saveReader(ctx, io.MultiReader(bytes.NewReader(data), f), relPath, n, nil); err != nil {
			return fmt.Errorf("backup %s: %w", fsPath, err)
		}
		return nil
	}
	syscall.Close(fd)
	return a.splitSmall(fsPath, relPath, n, params, data, scratch)
}

// saveSmallData saves a small file that batchReader read whole: data.
func (a *archiver) saveSmallData(ctx context.Context, fsPath, relPath string, n *repo.Node, params chunk.Params, data []byte, slot *smallSlot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.splitSmall(fsPath, relPath, n, params, data, &slot.stored)
}

// splitSmall stores a small file's data, read whole, as its one chunk: as
// a member of an open group where the repository groups small files and
// the file is one to group (groupable), else alone.
func (a *archiver) splitSmall(fsPath, relPath string, n *repo.Node, params chunk.Params, data []byte, scratch *[]byte) error {
	a.prog.Bytes.Add(int64(len(data)))
	var group func(chunk.ID, []byte) (bool, error)
	if a.groups != nil && groupable(len(data)) {
		group = a.addGroup
	}
	ids, sum, err := a.pipe.SplitSmallGrouped(data, scratch, relPath, params, a.key, a.isKnown, group, a.storeChunk)
	if err != nil {
		return fmt.Errorf("backup %s: %w", fsPath, err)
	}
	a.setContent(n, ids, sum, int64(len(data)))
	return nil
}

func (a *archiver) isKnown(id chunk.ID) bool { _, ok := a.known[id]; return ok }

// setContent records a file's content list, digest and size in its node.
func (a *archiver) setContent(n *repo.Node, ids []chunk.ID, sum [32]byte, size int64) {
	h := repo.Hash(sum)
	n.Content, n.BLAKE3, n.Size = ids, &h, uint64(size)
	a.bytes.Add(uint64(size))
	a.chunks.Add(uint64(len(ids)))
}

// saveReader streams a file's content from f through the chunk pipeline
// into the packer and sets n's content, digest and size. prev, if not nil,
// is the parent snapshot's content of a file cut at fixed offsets
// (deltaPrev): a new chunk that replaced one of the same length there may
// be stored as a delta of it (storeDelta).
func (a *archiver) saveReader(ctx context.Context, f io.Reader, relPath string, n *repo.Node, prev []chunk.ID) error {
	store := a.storeChunk
	var lazy func(int, chunk.ID) bool
	if prev != nil {
		store = func(c *chunk.Chunk) error { return a.storeDelta(ctx, c, prev, relPath) }
		lazy = func(i int, id chunk.ID) bool { return deltaCandidate(prev, i, id) }
	}
	ids, sum, size, err := a.pipe.SplitFileLazy(ctx, &progressReader{f: f, p: a.prog}, relPath, a.r.Polynomial(), a.params.For(relPath), a.key, a.isKnown, lazy, store)
	if err != nil {
		return err
	}
	a.setContent(n, ids, sum, size)
	return nil
}

// storeChunk is called concurrently by pipeline workers: it seals a chunk the
// repository lacks and hands it to the packer.
func (a *archiver) storeChunk(c *chunk.Chunk) error {
	if _, ok := a.known[c.ID]; ok {
		return nil
	}
	if !a.claim(c.ID) {
		return nil
	}
	return a.addChunk(c)
}

// addChunk hands a chunk this backup claimed to the packer, whole.
func (a *archiver) addChunk(c *chunk.Chunk) error {
	var flags uint8
	if c.Compressed {
		flags |= repo.FlagCompressed
	}
	a.newChunks.Add(1)
	a.newBytes.Add(uint64(len(c.Raw)))
	a.prog.NewBytes.Add(int64(len(c.Raw)))
	if a.dryRun {
		return nil
	}
	if err := a.packer.Err(); err != nil {
		// A pack write failed (a full disk): the backup fails with it;
		// stop reading and compressing now, not at Flush.
		return err
	}
	return a.packer.Add(repo.DataBlob, c.ID, flags, len(c.Raw), c.Stored)
}

// claim reports whether this backup is the first to store blob id: the
// packer's claim, or in a dry run the archiver's own set.
func (a *archiver) claim(id chunk.ID) bool {
	if a.dryRun {
		_, loaded := a.claimed.LoadOrStore(id, struct{}{})
		return !loaded
	}
	return a.packer.Claim(id)
}

// saveTree stores a tree blob (compressed: trees are JSON) and returns its ID.
func (a *archiver) saveTree(t *repo.Tree) (chunk.ID, error) {
	for i := 0; i < len(t.Nodes); i++ {
		if t.Nodes[i].Type == "" { // a file that vanished while being read
			t.Nodes = append(t.Nodes[:i], t.Nodes[i+1:]...)
			i--
		}
	}
	b, err := repo.EncodeTree(t)
	if err != nil {
		return chunk.ID{}, err
	}
	if len(b) > repo.MaxBlobSize { // readers refuse larger blobs: fail now, not at restore
		return chunk.ID{}, fmt.Errorf("a directory of %d entries makes a tree of %d bytes, above the %d a blob may hold", len(t.Nodes), len(b), repo.MaxBlobSize)
	}
	id := a.key.Sum(b)
	if _, ok := a.known[id]; ok || !a.claim(id) || a.dryRun {
		return id, nil
	}
	// At zstd's fastest level, past the text rule: a tree's JSON is mostly
	// hex IDs and numbers, on which the balanced level saved nothing (the
	// trees of Go's src/: 1.30 MB balanced, 1.29 fastest; of Python's lib
	// 5.796 and 5.803 MB, in 196 ms of CPU against 126).
	stored, compressed := chunk.CompressFastest(nil, b)
	var flags uint8
	if compressed {
		flags |= repo.FlagCompressed
	}
	return id, a.packer.Add(repo.TreeBlob, id, flags, len(b), stored)
}

type progressReader struct {
	f io.Reader
	p *repo.Progress
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	r.p.Bytes.Add(int64(n))
	return n, err
}

// lineTags returns the user's tags plus, for a space of a data dir with a
// database identity (DIR/.memento/identity.json), the identity: and
// timeline: tags (repository-format.md, "Identity and timeline tags"). A
// data dir without identity gives none: the legacy database.
func lineTags(opts BackupOptions) ([]string, error) {
	if opts.Space == "" || opts.DataDir == "" {
		return opts.Tags, nil
	}
	id, err := engram.ReadIdentity(opts.DataDir)
	if errors.Is(err, engram.ErrNoIdentity) {
		return opts.Tags, nil
	}
	if err != nil {
		return nil, err
	}
	tl, err := engram.ReadTimelines(opts.DataDir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(opts.Tags)+2)
	for _, t := range opts.Tags {
		if !strings.HasPrefix(t, repo.IdentityTagPrefix) && !strings.HasPrefix(t, repo.TimelineTagPrefix) {
			out = append(out, t)
		}
	}
	return append(out, repo.IdentityTagPrefix+id.Identity, fmt.Sprintf("%s%d", repo.TimelineTagPrefix, tl.Of(opts.Space))), nil
}

// A worker opens its file after the walk handed it over, while the walk goes
// on (a path backup walks a directory's subdirectories while its files are
// saved). By its full path, the open followed a directory above the file
// that was replaced by a symlink in between, and the snapshot stored a file
// from outside the tree under the tree's name (session 27's review). So a
// file the walk found in a directory it listed is opened there, by name,
// not following a symlink (openat with O_NOFOLLOW, as a batch's files are),
// and the directory's descriptor stays open until the last such file is
// open and read: a dirHandle counts who holds it.

// dirHandle is a listed directory's descriptor, closed when its last
// holder lets it go.
type dirHandle struct {
	fd   int
	refs atomic.Int32
}

// newDirHandle holds fd once, for the walk that listed it.
func newDirHandle(fd int) *dirHandle {
	h := &dirHandle{fd: fd}
	h.refs.Store(1)
	return h
}

// hold holds h once more (a worker's file) and returns it; nil holds nothing.
func (h *dirHandle) hold() *dirHandle {
	if h != nil {
		h.refs.Add(1)
	}
	return h
}

// release lets go of one hold, closing the descriptor at the last one.
func (h *dirHandle) release() {
	if h != nil && h.refs.Add(-1) == 0 {
		syscall.Close(h.fd)
	}
}

// fileIn is where a worker opens its file: name in the directory open as
// dir (held by h), or (dir < 0) its full path.
type fileIn struct {
	dir  int
	name string
	h    *dirHandle
}

// openIn opens a worker's file (openFD: not following a final symlink),
// where in says, waiting for descriptors as batchReader.open does.
func (a *archiver) openIn(in fileIn, fsPath string) (int, error) {
	if in.dir < 0 {
		return a.batches.open(fsPath)
	}
	return a.batches.openAt(in.dir, in.name, fsPath, fileFlags)
}
