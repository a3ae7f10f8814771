package local

import (
	"container/list"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"memento/repo/directio"
)

// Pack files are read in many small ranges (a FUSE mount or a restore reads
// every 32 KiB chunk of a warm page file separately), and opening, fstat-ing
// and closing the pack around each range cost more than the read itself. So
// the backend keeps a few packs open and reads them with pread (ReadAt, which
// is safe concurrently on one *os.File).
//
// A cached handle is never trusted blindly: every Open stats the path first
// (one syscall instead of three, and no *os.File allocation) and uses the
// handle only if the path still names the same file (device and inode) with
// the same size and modification time. A pack deleted, truncated or replaced
// under the cache is therefore seen exactly as without the cache: the error
// or the new content, never the old bytes. Only data/ files are cached: they
// are the immutable, content-addressed packs that are read in ranges; index,
// snapshot and lock files are read once.
//
// Each Backend owns its cache (made by Open and Create, bounded by
// maxHandles), so two Backends on one directory keep separate handles and
// nothing is shared process-wide. A handle that is evicted while readers
// still use it is closed when the last of them closes its reader. Close
// empties the cache the same way; packs read after it are opened per read
// and closed with their reader (uncached), so a closed Backend still reads
// correctly but keeps nothing open.

// maxHandles bounds the pack files each Backend keeps open (maxOpenHandles,
// per platform).
const maxHandles = maxOpenHandles

// handle is one open pack file.
type handle struct {
	f    *os.File
	fi   os.FileInfo // of f, at open
	refs int         // readers using f (guarded by handleCache.mu)
	gone bool        // evicted, stale or uncached: close when refs drops to 0
	elem *list.Element

	// direct is a second descriptor on the same file with O_DIRECT, for
	// large reads (see readInto); opened on the first, nil where refused.
	directOnce sync.Once
	direct     *os.File
	noDirect   atomic.Bool // the file system refused a direct read
}

// directFile returns h's O_DIRECT descriptor, opening it on first use, or
// nil where the system or file system does not take O_DIRECT. The caller
// holds a reference to h, so h is not closed meanwhile.
func (h *handle) directFile() *os.File {
	if h.noDirect.Load() {
		return nil
	}
	h.directOnce.Do(func() {
		d, err := directio.OpenReader(h.f)
		if err != nil {
			h.noDirect.Store(true)
			return
		}
		h.direct = d
	})
	return h.direct
}

// close closes h's descriptors once nobody reads them.
func (h *handle) close() {
	h.f.Close()
	if h.direct != nil {
		h.direct.Close()
	}
}

// handleCache is a least-recently-used set of open files, owned by one
// Backend.
type handleCache struct {
	mu     sync.Mutex
	limit  int
	closed bool // by close: nothing is cached any more
	m      map[string]*handle
	order  list.List // of string paths, most recently used first

	opens, hits int64
}

func newHandleCache(limit int) *handleCache {
	return &handleCache{limit: limit, m: map[string]*handle{}}
}

// cacheable reports whether name is a pack (data/...), worth keeping open.
func cacheable(name string) bool { return strings.HasPrefix(name, "data/") }

// sameFile reports whether a and b describe the same, unchanged file.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// acquire returns an open handle on path and its size. The caller must
// release it. Errors are those of os.Stat or os.Open (unwrap with unwrapPath).
func (c *handleCache) acquire(path string) (*handle, error) {
	if c.limit <= 0 {
		return openHandle(path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return openUncached(path)
	}
	if h, ok := c.m[path]; ok {
		if sameFile(h.fi, fi) {
			h.refs++
			c.order.MoveToFront(h.elem)
			c.hits++
			c.mu.Unlock()
			return h, nil
		}
		c.dropLocked(path, h) // deleted, replaced or rewritten since it was opened
	}
	c.mu.Unlock()

	h, err := openHandle(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed { // closed meanwhile: do not cache it
		h.gone = true
		return h, nil
	}
	c.opens++
	if old, ok := c.m[path]; ok {
		// Another reader opened it meanwhile; keep the newer one cached.
		c.dropLocked(path, old)
	}
	h.elem = c.order.PushFront(path)
	c.m[path] = h
	for c.order.Len() > c.limit {
		back := c.order.Back()
		p := back.Value.(string)
		c.dropLocked(p, c.m[p])
	}
	return h, nil
}

// openHandle opens path for reading, with one reference.
func openHandle(path string) (*handle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &handle{f: f, fi: fi, refs: 1}, nil
}

// openUncached opens path for one reader: release closes it.
func openUncached(path string) (*handle, error) {
	h, err := openHandle(path)
	if err != nil {
		return nil, err
	}
	h.gone = true
	return h, nil
}

// dropLocked removes h from the cache; it is closed once nobody reads it.
func (c *handleCache) dropLocked(path string, h *handle) {
	c.order.Remove(h.elem)
	h.elem = nil
	delete(c.m, path)
	h.gone = true
	if h.refs == 0 {
		h.close()
	}
}

// release gives back a handle from acquire.
func (c *handleCache) release(h *handle) {
	if c.limit <= 0 {
		h.close()
		return
	}
	c.mu.Lock()
	h.refs--
	closeIt := h.refs == 0 && h.gone
	c.mu.Unlock()
	if closeIt {
		h.close()
	}
}

// close closes every cached handle that no reader uses; those in use are
// closed when their last reader closes. Later acquires open uncached
// handles. close is idempotent.
func (c *handleCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for path, h := range c.m {
		c.dropLocked(path, h)
	}
}

// stats returns the files open in the cache, the opens and the hits.
func (c *handleCache) stats() (open int, opens, hits int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.opens, c.hits
}
