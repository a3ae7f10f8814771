package index

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
	"weak"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the version of the cache layout and of the Location
// encoding. A file with another version is refused with ErrVersion; it is a
// cache, so the fix is a rebuild, never a migration.
const FormatVersion = 1

// DefaultLockTimeout is how long a call waits for another process's
// transaction before failing with ErrBusy. Transactions are short (one call),
// so hitting it means a stuck process, not ordinary contention.
const DefaultLockTimeout = 60 * time.Second

var (
	bucketMeta      = []byte("meta")
	bucketFiles     = []byte("files")
	bucketPacks     = []byte("packs")
	bucketSpaces    = []byte("spaces")
	bucketSnapshots = []byte("snapshots")
	keyVersion      = []byte("version")
	keyRepo         = []byte("repo")
)

var topBuckets = [][]byte{bucketMeta, bucketFiles, bucketPacks, bucketSpaces, bucketSnapshots}

// fileLocks serialises the goroutines of this process per cache file.
// bbolt's flock would exclude them too (flock locks are per open file), but
// it polls every 50 ms; a mutex hands over immediately. Every handle on a
// path (two repositories of one process may share a cache file) must get the
// same mutex, so the table is per process, but it does not own the mutexes:
// the handles do. An entry is a weak pointer, removed when the last handle
// holding its mutex is collected, so the table holds only the paths of live
// handles.
var fileLocks = struct {
	sync.Mutex
	m map[string]weak.Pointer[sync.RWMutex] // absolute path -> its handles' mutex
}{m: map[string]weak.Pointer[sync.RWMutex]{}}

func lockFor(path string) *sync.RWMutex {
	fileLocks.Lock()
	defer fileLocks.Unlock()
	if m := fileLocks.m[path].Value(); m != nil {
		return m
	}
	m := new(sync.RWMutex)
	wp := weak.Make(m)
	fileLocks.m[path] = wp
	runtime.AddCleanup(m, func(path string) {
		fileLocks.Lock()
		defer fileLocks.Unlock()
		if fileLocks.m[path] == wp { // not yet replaced by a newer handle's
			delete(fileLocks.m, path)
		}
	}, path)
	return m
}

// Index is a handle on a cache file. It holds no open file and no lock
// between calls, and is safe for concurrent use by goroutines and processes.
type Index struct {
	path        string
	mu          *sync.RWMutex
	lockTimeout time.Duration

	// mergeBatch bounds the blob locations one transaction of AddFiles puts
	// (0: mergeBatchDefault); tests set it smaller.
	mergeBatch int
	// mergeStop, when set (by tests only), is called after each committed
	// transaction of a batched merge; an error from it ends the merge there,
	// leaving the file as a process killed at that point would.
	mergeStop func(committed int) error
}

// Open returns a handle on the cache file at path, creating the file and its
// buckets when missing. A damaged or foreign file fails with ErrCorrupt, one
// from another format version with ErrVersion; both errors name the file.
func Open(path string) (*Index, error) { return open(path, "") }

// OpenBound is Open followed by Bind(repoID), in one write transaction when
// the file is new: a new cache (every first backup, and the benchmark's
// every run) cost two commits before, each two fdatasyncs and an open of
// the file, on the way to the first file read (docs/benchmarks.md, "Issue
// 18, session 21: the first backup of small-file trees").
func OpenBound(path, repoID string) (*Index, error) {
	if repoID == "" {
		return nil, fmt.Errorf("index %s: bind: empty repository id", path)
	}
	return open(path, repoID)
}

// open is Open, and with a repoID Bind too.
func open(path, repoID string) (*Index, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	ix := &Index{path: abs, mu: lockFor(abs), lockTimeout: DefaultLockTimeout}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("index %s: %w", abs, err)
	}
	// A file that is already a memento index needs no write: a read-only
	// transaction checks its layout without a commit (two fdatasyncs and an
	// exclusive lock, on every command). Anything else, or a failed check,
	// takes the read-write path, which creates the layout or reports the error.
	if fi, err := os.Stat(abs); err == nil && fi.Size() > 0 {
		var cur []byte
		if ix.view(func(tx *bolt.Tx) error {
			cur = bytes.Clone(tx.Bucket(bucketMeta).Get(keyRepo))
			return nil
		}) == nil {
			if repoID == "" || string(cur) == repoID {
				return ix, nil
			}
			if err := ix.update(func(tx *bolt.Tx) error { return bind(ix.path, tx, repoID) }); err != nil {
				return nil, err
			}
			return ix, nil
		}
	}
	if err := ix.update(func(tx *bolt.Tx) error { return bind(ix.path, tx, repoID) }); err != nil {
		return nil, err
	}
	return ix, nil
}

// Recreate deletes the cache file at path, whatever state it is in, and
// opens a new empty one. It is the way out of ErrCorrupt and ErrVersion.
// A process still using the old file keeps writing to the unlinked inode,
// which is harmless for a cache.
func Recreate(path string) (*Index, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	mu := lockFor(abs)
	mu.Lock()
	err = os.Remove(abs)
	mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("index %s: remove: %w", abs, err)
	}
	return Open(abs)
}

// Path returns the absolute path of the cache file.
func (ix *Index) Path() string { return ix.path }

// view runs fn in a read-only transaction on a read-only (shared-lock) open.
func (ix *Index) view(fn func(*bolt.Tx) error) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.run(true, fn)
}

// update runs fn in one read-write transaction; fn's error rolls it back.
func (ix *Index) update(fn func(*bolt.Tx) error) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.run(false, fn)
}

func (ix *Index) run(readOnly bool, fn func(*bolt.Tx) error) error {
	return ix.runDB(readOnly, func(do func(func(*bolt.Tx) error) error) error { return do(fn) })
}

// updates runs fn in successive read-write transactions on one open of the
// file, each committed before the next, until fn reports it is done. An
// error rolls back only the transaction it happened in: the ones before it
// are committed (AddFiles's batches, which leave the file consistent).
// committed, when not nil, is called after each commit; its error ends the
// run there.
func (ix *Index) updates(fn func(*bolt.Tx) (done bool, err error), committed func() error) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.runDB(false, func(do func(func(*bolt.Tx) error) error) error {
		for done := false; !done; {
			if err := do(func(tx *bolt.Tx) (err error) {
				done, err = fn(tx)
				return err
			}); err != nil {
				return err
			}
			if committed != nil {
				if err := committed(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// runDB opens the file and calls txs with a function that runs one
// transaction on it (read-only or read-write as the open), checking the
// layout first.
func (ix *Index) runDB(readOnly bool, txs func(do func(func(*bolt.Tx) error) error) error) (err error) {
	// bbolt panics on some kinds of page corruption; a cache must report
	// that as a damaged file, not crash the backup. A fault on the mapped
	// file (a page cut off after checkFile looked) becomes such a panic too.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("index %s: %w: %v (%s)", ix.path, ErrCorrupt, r, rebuildHint)
		}
	}()
	if err := checkFile(ix.path, ix.lockTimeout); err != nil {
		return err
	}
	db, err := openBolt(ix.path, readOnly, ix.lockTimeout)
	if err != nil {
		return ix.openError(err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("index %s: close: %w", ix.path, cerr)
		}
	}()
	return txs(func(fn func(*bolt.Tx) error) error {
		txFn := func(tx *bolt.Tx) error {
			if err := ix.checkLayout(tx, readOnly); err != nil {
				return err
			}
			return fn(tx)
		}
		if readOnly {
			return db.View(txFn)
		}
		return db.Update(txFn)
	})
}

// writeMmapSize is the least a read-write open maps of the file. bbolt
// maps the file's size, and a transaction that allocates past the mapping
// maps it again, twice as large, after copying every node the transaction
// touched out of the old mapping (Bucket.dereference): seven times for the
// first backup of Go's src/ (12,600 blobs into a new cache, the file growing
// from 32 KiB to 4 MiB), which took half of the merge's 65 ms
// (docs/benchmarks.md, "Issue 18, session 21: the first backup of
// small-file trees"). Mapping 64 MiB from the start costs address space
// only: the file still grows page by page as written. Read-only opens
// allocate nothing and map the file's size. Not on Windows, where bbolt
// extends the file to the mapping.
const writeMmapSize = 64 << 20

// growStep is what a read-write open grows its file by when a transaction
// needs more: the file's size, from 1 MiB to bbolt's 16 MiB. bbolt grows a
// file mapped beyond 16 MiB (writeMmapSize) by 16 MiB past what it needs,
// which left a 2 MiB cache 16 MiB long (sparse, but read whole by the next
// command's prefetch, open_ahead.go); mapped smaller, it had grown the
// file to the mapping, doubling it.
func growStep(db *bolt.DB) int {
	size := 0
	if fi, err := os.Stat(db.Path()); err == nil {
		size = int(fi.Size())
	}
	return min(max(size, 1<<20), 16<<20) // bbolt's DefaultAllocSize
}

// openBolt opens the cache file at path as every transaction does.
func openBolt(path string, readOnly bool, timeout time.Duration) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, boltOptions(readOnly, timeout))
	if err != nil {
		return nil, err
	}
	if !readOnly {
		db.AllocSize = growStep(db)
	}
	return db, nil
}

// boltOptions are the options of every open of a cache file.
func boltOptions(readOnly bool, timeout time.Duration) *bolt.Options {
	o := &bolt.Options{Timeout: timeout, ReadOnly: readOnly, FreelistType: bolt.FreelistMapType}
	if !readOnly && runtime.GOOS != "windows" {
		o.InitialMmapSize = writeMmapSize
	}
	return o
}

func (ix *Index) openError(err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("index %s: %w for more than %s", ix.path, ErrBusy, ix.lockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrInvalidMapping):
		return fmt.Errorf("index %s: %w: %w (%s)", ix.path, ErrCorrupt, err, rebuildHint)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("index %s: %w (it was deleted; open it again)", ix.path, err)
	}
	return fmt.Errorf("index %s: %w", ix.path, err)
}

// checkLayout verifies, in every transaction, that the file is a memento
// index of our version: another process may have recreated it meanwhile. A
// brand-new (bucketless) file is initialised when the tx is writable.
func (ix *Index) checkLayout(tx *bolt.Tx, readOnly bool) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty || readOnly {
			return fmt.Errorf("index %s: %w: no memento meta bucket (%s)", ix.path, ErrCorrupt, rebuildHint)
		}
		return initLayout(tx)
	}
	v := meta.Get(keyVersion)
	if len(v) != 1 {
		return fmt.Errorf("index %s: %w: version record of %d bytes (%s)", ix.path, ErrCorrupt, len(v), rebuildHint)
	}
	if v[0] != FormatVersion {
		return fmt.Errorf("index %s: %w: file has version %d, this memento reads version %d (%s)",
			ix.path, ErrVersion, v[0], FormatVersion, rebuildHint)
	}
	for _, name := range topBuckets[1:] {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("index %s: %w: bucket %q missing (%s)", ix.path, ErrCorrupt, name, rebuildHint)
		}
	}
	return nil
}

func initLayout(tx *bolt.Tx) error {
	for _, name := range topBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return tx.Bucket(bucketMeta).Put(keyVersion, []byte{FormatVersion})
}

// Reset drops everything the cache holds, including the repository binding,
// in one transaction, for `memento index rebuild`. The file keeps its size
// (bbolt reuses the pages); Recreate gives a fresh file.
func (ix *Index) Reset() error {
	return ix.update(func(tx *bolt.Tx) error {
		var names [][]byte
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, append([]byte(nil), name...))
			return nil
		}); err != nil {
			return err
		}
		for _, name := range names {
			if err := tx.DeleteBucket(name); err != nil {
				return fmt.Errorf("index %s: reset: %w", ix.path, err)
			}
		}
		if err := initLayout(tx); err != nil {
			return fmt.Errorf("index %s: reset: %w", ix.path, err)
		}
		return nil
	})
}

// Bind ties the cache to one repository: the first call records repoID,
// later calls succeed only with the same id. It keeps a cache path shared by
// mistake between two repositories from answering with the other's blobs.
func (ix *Index) Bind(repoID string) error {
	if repoID == "" {
		return fmt.Errorf("index %s: bind: empty repository id", ix.path)
	}
	// Bound already (every command after the first): no write transaction.
	if cur, err := ix.RepoID(); err == nil && cur == repoID {
		return nil
	}
	return ix.update(func(tx *bolt.Tx) error { return bind(ix.path, tx, repoID) })
}

// bind records repoID in tx's file, or checks that it is the one recorded;
// an empty repoID does nothing.
func bind(path string, tx *bolt.Tx, repoID string) error {
	if repoID == "" {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	switch cur := meta.Get(keyRepo); {
	case cur == nil:
		return meta.Put(keyRepo, []byte(repoID))
	case string(cur) != repoID:
		return fmt.Errorf("index %s: %w: it caches repository %s, not %s (use another cache file or %s)",
			path, ErrForeign, cur, repoID, rebuildHint)
	}
	return nil
}

// RepoID returns the repository id recorded by Bind, or "" if unbound.
func (ix *Index) RepoID() (string, error) {
	var id string
	err := ix.view(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(keyRepo))
		return nil
	})
	return id, err
}
