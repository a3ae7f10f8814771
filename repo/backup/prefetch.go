package backup

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// Before its walk a path backup spends about 85 ms of a quiet 1.15 s (Go's
// src/, caches dropped) on one core: the key's derivation (argon2id), the
// new local cache's commit, the lock and the reserve, each fsynced. Prefetch
// fills the other core meanwhile with the first part of the walk's cold
// reads: it lists the directories the walk will list first, lstats their
// entries (the inodes) and asks the kernel to read the small files ahead
// (posix_fadvise WILLNEED, which returns once the reads are queued), so
// that the walk, when it starts, finds them in the page cache
// (docs/benchmarks.md, "Issue 18, session 22: the idle core of a first
// backup"). It creates nothing, writes nothing and stores nothing: a wrong
// password leaves no trace of it. The walk itself reads every file again
// as it always does; what Prefetch did not reach is read cold.
const (
	// prefetchBytes and prefetchFiles bound what Prefetch asks the kernel
	// to read ahead, however long the walk takes to start (a slow
	// storage's open): a fraction of a tree of small files, never more of
	// the page cache than the backup's own pack and arenas take.
	prefetchBytes = 64 << 20
	prefetchFiles = 8192
)

// Prefetch starts warming the page cache for a path backup of opts (not a
// space, stdin, dry run, BeforeDir or Redirect: for those it does nothing)
// in prefetchers goroutines, walking the sources depth first in the walk's
// order (a directory's files, then its subdirectories in name order), up to
// prefetchers directories at once as the walk lists several, and honouring
// opts' excludes and OneFileSystem. stop ends it and waits for it: call it before the backup's
// walk starts, or when the command fails before. Errors are ignored: the
// walk meets and reports them.
func Prefetch(opts BackupOptions) (stop func()) {
	p := newPrefetcher(opts)
	if p == nil {
		return func() {}
	}
	wait := p.start()
	return sync.OnceFunc(func() {
		p.stopped.Store(true)
		p.mu.Lock()
		p.more.Broadcast()
		p.mu.Unlock()
		wait()
	})
}

// newPrefetcher returns the prefetcher of a path backup of opts, or nil.
func newPrefetcher(opts BackupOptions) *prefetcher {
	if opts.Space != "" || opts.Stdin != nil || opts.BeforeDir != nil || opts.Redirect != nil || opts.DryRun {
		return nil
	}
	var roots []item
	var err error
	if opts.FullPaths {
		roots, _, err = fullPathRoots(opts.Paths)
	} else {
		roots, _, err = backupRoots(opts)
	}
	if err != nil || len(roots) == 0 {
		return nil
	}
	p := &prefetcher{opts: opts, roots: roots, readAhead: readAhead}
	p.more = sync.NewCond(&p.mu)
	return p
}

// start starts the prefetcher's goroutines; wait waits for them to end.
func (p *prefetcher) start() (wait func()) {
	p.busy = 1
	var wg sync.WaitGroup
	wg.Go(func() {
		p.next(p.items(p.roots)) // then works as the others do
	})
	for range prefetchers - 1 {
		wg.Go(func() { p.next(nil) })
	}
	return wg.Wait
}

// prefetchers is how many goroutines list directories at once: a cold
// directory or inode is a wait on the disk, not work for a core.
const prefetchers = 8

type prefetcher struct {
	opts         BackupOptions
	roots        []item
	readAhead    func(path string, size int64) // readAhead; a test's records what is read
	stopped      atomic.Bool
	bytes, files atomic.Int64
	mu           sync.Mutex
	more         *sync.Cond
	dirs         []item // a stack: the last pushed is listed first (depth first)
	busy         int    // goroutines handling a directory, which may push more
}

// done reports whether the prefetch must stop: told to, or past its bounds.
func (p *prefetcher) done() bool {
	return p.stopped.Load() || p.bytes.Load() >= prefetchBytes || p.files.Load() >= prefetchFiles
}

// next pushes dirs (in reverse, so that the first is listed first), then
// lists directories from the stack until none is left and none is being
// listed, or the prefetch is done.
func (p *prefetcher) next(dirs []item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if dirs != nil {
			p.busy--
			for i := len(dirs) - 1; i >= 0; i-- {
				p.dirs = append(p.dirs, dirs[i])
			}
			p.more.Broadcast()
			dirs = nil
		}
		for len(p.dirs) == 0 && p.busy > 0 && !p.done() {
			p.more.Wait()
		}
		if len(p.dirs) == 0 || p.done() {
			p.more.Broadcast()
			return
		}
		d := p.dirs[len(p.dirs)-1]
		p.dirs = p.dirs[:len(p.dirs)-1]
		p.busy++
		p.mu.Unlock()
		dirs = []item{}
		if children, err := readDirItems(d, nil); err == nil {
			dirs = p.items(children)
		}
		p.mu.Lock()
	}
}

// items handles one directory's entries as saveItems does: lstat each and
// read the small files ahead. It returns the subdirectories.
func (p *prefetcher) items(items []item) []item {
	dirs := []item{}
	for _, it := range items {
		if p.done() {
			return dirs
		}
		if it.source && excludedPath(p.opts.Exclude, it.path) {
			continue
		}
		fi, err := os.Lstat(it.path)
		if err != nil {
			continue
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if st != nil && it.source && p.opts.OneFileSystem {
				if it.dev == 0 {
					it.dev = uint64(st.Dev)
				} else if uint64(st.Dev) != it.dev {
					continue // a mount point: the walk stores it empty
				}
			}
			dirs = append(dirs, it)
		case fi.Mode().IsRegular() && fi.Size() > 0 && fi.Size() < smallFileMax:
			p.files.Add(1)
			p.bytes.Add(fi.Size())
			p.readAhead(it.path, fi.Size())
		}
	}
	return dirs
}
