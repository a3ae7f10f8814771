package repo

import (
	"context"
	"os"
	"sync"
)

// What Open does while the key is derived. argon2id (the key file's KDF:
// ~0.1 s of one core at the default parameters) is the first thing every
// command waits for, and what comes after it began with reads that need no
// key: the listings of index/ and snapshots/ (Sync) and the first pages of
// the local index cache, each a wait for the device when its cache is cold
// (a command run after a while, or the benchmark's dropped page cache).
// openAhead does those reads on another goroutine while the key is
// derived: the two listings, kept for Sync to use in place of its own, and
// a hint to the kernel to read the local index file into the page cache
// (prefetchFile). Nothing is written or created and nothing needing the key
// runs before it is known: a wrong password fails as before, after the
// same key file reads, with the same error (TestOpenListsWhileTheKeyIsDerived).
type openAhead struct {
	done chan struct{}
	dirs map[string]*dirListing // DirIndex, DirSnapshots
}

// dirListing is one backend listing kept for later: its entries in the
// order listed, or its error.
type dirListing struct {
	names []string
	sizes []int64
	err   error
}

// startOpenAhead starts the listings of the index files and snapshots and
// the prefetch of the local index file at indexPath (if it exists).
func startOpenAhead(ctx context.Context, be Backend, indexPath string) *openAhead {
	a := &openAhead{done: make(chan struct{}), dirs: map[string]*dirListing{DirIndex: {}, DirSnapshots: {}}}
	go func() {
		defer close(a.done)
		var wg sync.WaitGroup
		for dir, l := range a.dirs {
			wg.Go(func() {
				l.err = be.List(ctx, dir, func(name string, size int64) error {
					l.names, l.sizes = append(l.names, name), append(l.sizes, size)
					return nil
				})
			})
		}
		prefetchFile(indexPath)
		wg.Wait()
	}()
	return a
}

// wait waits for the listings to end (also when Open fails: they must not
// outlive it).
func (a *openAhead) wait() { <-a.done }

// list calls fn for every file of dir, as Backend.List does: from the
// listing Open made while the key was derived (once), else from be.
func (r *Repository) list(ctx context.Context, dir string, fn func(name string, size int64) error) error {
	r.mu.Lock()
	l := r.listed[dir]
	delete(r.listed, dir)
	r.mu.Unlock()
	if l == nil {
		return r.be.List(ctx, dir, fn)
	}
	if l.err != nil {
		return l.err
	}
	for i, name := range l.names {
		if err := fn(name, l.sizes[i]); err != nil {
			return err
		}
	}
	return nil
}

// prefetchMax bounds what prefetchFile reads of a file: a large
// repository's index is not all needed by every command.
const prefetchMax = 64 << 20

// prefetchFile asks the kernel to read the file at path into the page cache
// in the background (see prefetch); a missing file is nothing to read.
func prefetchFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	prefetch(f)
}
