package fusefs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/chunk"
	"memento/repo"
	"memento/repo/lru"
	"memento/repo/pitr"
	"memento/repo/restore"
)

// FS is the state shared by every node of one mount: the repository, the
// caches, the catalog and the readahead workers.
type FS struct {
	r       *repo.Repository
	opts    Options
	log     *slog.Logger
	ctx     context.Context // the mount's lifetime; fetches use it, not a request's
	cancel  context.CancelFunc
	started time.Time

	chunks *lru.Cache[chunk.ID, []byte]
	mem    *chunkMem // where chunks are decoded (nil: fresh slices)
	trees  *lru.Cache[chunk.ID, *repo.Tree]
	pits   *pitViews // recovered points in time, by space and instant

	cat       atomic.Pointer[catalog]
	refreshMu sync.Mutex

	verifiedMu sync.Mutex
	verified   map[chunk.ID]*repo.Snapshot

	prefetchQ chan prefetchJob
	workers   sync.WaitGroup

	root *genDir
}

// New builds the filesystem for r. It reads nothing: the catalog is loaded
// when a generated directory is first used. Close stops its workers.
func New(r *repo.Repository, opts Options) *FS {
	opts.setDefaults()
	if opts.Planner == nil {
		opts.Planner = pitr.NewPlanner(restore.Fetcher(r))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &FS{r: r, opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, started: time.Now(),
		chunks:    lru.New[chunk.ID](opts.CacheSize, func(b []byte) int64 { return int64(cap(b)) + 64 }),
		trees:     lru.New[chunk.ID](opts.TreeCacheSize, treeCost),
		pits:      newPITViews(opts.PointInTimeViews, opts.Logger),
		verified:  map[chunk.ID]*repo.Snapshot{},
		prefetchQ: make(chan prefetchJob, 64),
	}
	if opts.Readahead > 0 {
		n := opts.PrefetchWorkers
		f.workers.Add(n)
		for range n {
			go f.prefetchWorker()
		}
	}
	if f.mem = newChunkMem(chunkMemSize(opts)); f.mem != nil {
		f.chunks.Release = f.mem.free
		f.workers.Add(1)
		go func() {
			defer f.workers.Done()
			f.mem.prefault(ctx.Done())
		}()
	}
	f.root = f.rootDir()
	return f
}

// Root is the root directory, to pass to fs.Mount or fs.NewNodeFS.
func (f *FS) Root() fs.InodeEmbedder { return f.root }

// Close stops the readahead workers and drops the recovered points in
// time (PointInTime.Close). Reads after Close fail.
func (f *FS) Close() {
	f.cancel()
	f.workers.Wait()
	if f.mem != nil {
		f.mem.mu.Lock()
		st := f.mem.stats
		f.mem.mu.Unlock()
		f.log.Debug("chunk memory", "slab", len(f.mem.slab), "peak", st.peak, "from_slab", st.hits, "from_heap", st.misses)
	}
	f.pits.closeAll()
}

// CacheStats reports the chunk cache: bytes held, hits, misses, evictions.
func (f *FS) CacheStats() (used, hits, misses, evictions int64) { return f.chunks.Stats() }

// treeCost estimates the memory a decoded tree holds.
func treeCost(t *repo.Tree) int64 {
	n := int64(64)
	for _, nd := range t.Nodes {
		n += 200 + int64(len(nd.Name)+len(nd.LinkTarget)+len(nd.Content)*32)
	}
	return n
}

// loadTree returns a verified tree of a space through the tree cache.
func (f *FS) loadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error) {
	return f.trees.Get(ctx, id, func() (*repo.Tree, error) { return f.r.LoadTree(f.ctx, space, id) })
}

// chunkEntry is a chunk in the cache, or being loaded into it.
type chunkEntry = lru.Entry[chunk.ID, []byte]

// loadChunks fetches the chunks of entries, claimed by the caller
// (lru.Own), with one batched read, and fills every entry: with its
// verified plaintext, or with the error that kept it from being read (not
// cached; the next read tries again). It uses the mount's context, not a
// request's: other readers may be waiting for these entries.
func (f *FS) loadChunks(space string, entries []*chunkEntry) {
	ids := make([]chunk.ID, len(entries))
	for k, e := range entries {
		ids[k] = e.Key()
	}
	filled := make([]bool, len(ids))
	// Runs of pack neighbours in pack order, around the page cache of a
	// local repository, fresh slices the cache keeps; a damaged chunk is
	// read from another pack holding a copy of it, when the index knows
	// one, with a warning naming the damaged pack.
	opts := repo.StreamOptions{Sort: true, AroundCache: true, Buffer: repo.BufferFresh,
		Fallback: true, Who: "mount", Logger: f.log}
	if f.mem != nil {
		opts.Alloc, opts.Free = f.mem.alloc, f.mem.free
	}
	err := f.r.StreamBlobs(f.ctx, space, repo.DataBlob, ids, opts, func(b repo.StreamBlob) error {
		if !filled[b.Index] {
			filled[b.Index] = true
			f.chunks.Fill(entries[b.Index], b.Data, b.Err)
		}
		return nil
	})
	// StreamBlobs answers every id; should it ever not, no waiter may hang.
	for k, done := range filled {
		if !done {
			f.chunks.Fill(entries[k], nil, fmt.Errorf("chunk %s: not read: %w", ids[k].Short(), cmp.Or(err, errNotRead)))
		}
	}
}

// errNotRead marks a chunk a batched read did not answer.
var errNotRead = errors.New("batched read returned without it")

// verifiedSnapshot reads a snapshot's manifest from the repository and checks
// its signature, once per mount: the local catalog only says which snapshots
// exist, the manifest is what vouches for the root tree ID.
func (f *FS) verifiedSnapshot(ctx context.Context, id chunk.ID) (*repo.Snapshot, error) {
	f.verifiedMu.Lock()
	sn, ok := f.verified[id]
	f.verifiedMu.Unlock()
	if ok {
		return sn, nil
	}
	sn, err := f.r.FindSnapshot(f.ctx, id.String())
	if err != nil {
		return nil, err
	}
	f.verifiedMu.Lock()
	f.verified[id] = sn
	f.verifiedMu.Unlock()
	return sn, nil
}

// Timeouts: snapshot content never changes, so the kernel may keep its
// entries and attributes for long; the generated directories follow backups.
const (
	immutableTimeout = time.Hour
	dynamicTimeout   = time.Second
	// lookupRefresh is the age after which a lookup of a name the catalog
	// lacks syncs before answering ENOENT, so `ls snapshots/<new-id>` right
	// after a backup works.
	lookupRefresh = time.Second
)

// nodeOptions are the go-fuse options of a mount of f.
func (f *FS) nodeOptions(mountOpts fuse.MountOptions) *fs.Options {
	imm := immutableTimeout
	return &fs.Options{
		MountOptions: mountOpts,
		EntryTimeout: &imm,
		AttrTimeout:  &imm,
		// NegativeTimeout stays nil (0): a name missing now may be a snapshot
		// written a second later.
		RootStableAttr: &fs.StableAttr{Ino: fuse.FUSE_ROOT_ID},
	}
}

// errno logs a failure that is not "not there" and turns it into EIO, so the
// operator can tell a damaged repository from a typo.
func (f *FS) errno(msg string, err error, args ...any) syscall.Errno {
	if errors.Is(err, repo.ErrCorrupt) {
		args = append(args, "corrupt", true)
	}
	f.log.Error(msg, append(args, "err", err)...)
	return syscall.EIO
}
