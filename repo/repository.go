package repo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/restic/chunker"
	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"

	"memento/chunk"
	"memento/index"
)

// DefaultPackSize is the target size of a pack. 16 MiB keeps the number of
// files (and object-store requests) low while a pack still fits comfortably in
// memory during a backup of several spaces at once.
const DefaultPackSize = 16 << 20

// Repository is an open, unlocked repository. It is safe for concurrent use.
type Repository struct {
	be      Backend
	cfg     Config
	seal    sealer
	idKey   [32]byte
	pol     chunker.Pol
	signKey ed25519.PrivateKey
	ix      *index.Index
	log     *slog.Logger
	locking lockState
	ms      *masterSecret // what the password unlocked, for adding keys (key_manage.go)
	keyName string        // the key file that opened the repository

	mu   sync.Mutex
	keys map[string]chunk.Key                   // per-space chunk ID keys
	locs map[string]map[chunk.ID]index.Location // per-space location cache
	// treesCached lists the spaces whose tree locations were all put into
	// locs in one pass (cacheTreeLocations).
	treesCached map[string]bool
	// dataCached lists the spaces whose data blob locations were put into
	// locs in one pass, for the bases of delta blobs (locateWhole).
	dataCached map[string]bool

	packs *packPool // the packers' buffers and uploaders (pack_pool.go)

	groups *groupCache // decoded groups of members (member.go)

	// reconcileMu serialises reconcilePacks; reconciled is when it last
	// listed data/, so the backups of `backup --all` share one listing.
	reconcileMu sync.Mutex
	reconciled  time.Time
	dropGen     uint64 // reconciliations that dropped packs

	catalog catalogBatch // catalog entries waiting for one commit (DeferCatalog)
}

// Options open a repository.
type Options struct {
	Password string
	// CacheDir holds the local bbolt index, one subdirectory per repository ID.
	// Empty means $MEMENTO_CACHE_DIR, else the user cache dir + "/memento".
	CacheDir string
	Logger   *slog.Logger
	// Lock says how the command locks the repository (lock.go).
	Lock LockOptions
	// KeyCache, when set, keeps the unlocked key between commands so that
	// they skip argon2id (key_cache.go; the kernel keyring: repo/keycache).
	KeyCache KeyCache
}

// InitOptions create a repository.
type InitOptions struct {
	Password string
	// Insecure stores data unencrypted (still authenticated by MACs).
	Insecure bool
	// Cipher is the encryption of an encrypted repository, one of Ciphers
	// ("": DefaultEncryption). It cannot be combined with Insecure.
	Cipher   string
	KDF      KDFParams
	PackSize int64
	// Format is the repository format to create, OldestInitFormat to
	// FormatVersion (0: FormatVersion), for older binaries to open: the
	// repository keeps it for life, and this binary writes into it only
	// what binaries of that format read.
	Format int
}

// Init creates a new repository on be and returns its config. It refuses to
// touch a location that already holds a config.
func Init(ctx context.Context, be Backend, opts InitOptions) (Config, error) {
	if opts.Format == 0 {
		opts.Format = FormatVersion
	}
	if opts.Format < OldestInitFormat || opts.Format > FormatVersion {
		return Config{}, fmt.Errorf("%w: repository format %d (this binary creates formats %d to %d)", ErrInvalidArgument, opts.Format, OldestInitFormat, FormatVersion)
	}
	enc, err := initEncryption(opts)
	if err != nil {
		return Config{}, err
	}
	if _, err := be.Stat(ctx, ConfigName); err == nil {
		return Config{}, fmt.Errorf("a repository already exists at %s", be.Location())
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("repository %s: %w", be.Location(), err)
	}
	if opts.KDF == (KDFParams{}) {
		opts.KDF = DefaultKDF
	}
	if opts.PackSize == 0 {
		opts.PackSize = DefaultPackSize
	}
	ms, err := newMasterSecret()
	if err != nil {
		return Config{}, err
	}
	kf, err := wrapKey(ms, opts.Password, opts.KDF, opts.Insecure)
	if err != nil {
		return Config{}, err
	}
	// The key goes first: a config without a key would be a repository nobody can open.
	if err := be.Write(ctx, FileName(DirKeys, blake3.Sum256(kf)), bytes.NewReader(kf), int64(len(kf))); err != nil {
		return Config{}, fmt.Errorf("write key: %w", err)
	}
	idb := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return Config{}, err
	}
	cfg := Config{
		Version: opts.Format, ID: hex.EncodeToString(idb), Created: time.Now().UTC(),
		Encryption: enc, PackSize: opts.PackSize, ChunkParams: chunk.CurrentParamSet,
		SignPublicKey: ed25519.NewKeyFromSeed(ms.SignSeed).Public().(ed25519.PublicKey),
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return Config{}, err
	}
	if err := be.Write(ctx, ConfigName, bytes.NewReader(b), int64(len(b))); err != nil {
		return Config{}, fmt.Errorf("write config: %w", err)
	}
	return cfg, nil
}

// initEncryption is the config's encryption for opts.
func initEncryption(opts InitOptions) (string, error) {
	switch {
	case opts.Insecure && opts.Cipher != "":
		return "", fmt.Errorf("%w: a cipher (%s) for a repository without encryption", ErrInvalidArgument, opts.Cipher)
	case opts.Insecure:
		return EncryptionNone, nil
	case opts.Cipher == "":
		return DefaultEncryptionOf(opts.Format), nil
	case slices.Contains(Ciphers(), opts.Cipher) && opts.Format < CipherFormat(opts.Cipher):
		return "", fmt.Errorf("%w: cipher %s in a repository of format %d (it needs format %d or later)", ErrInvalidArgument, opts.Cipher, opts.Format, CipherFormat(opts.Cipher))
	case slices.Contains(Ciphers(), opts.Cipher):
		return opts.Cipher, nil
	}
	return "", fmt.Errorf("%w: unknown cipher %q (want %s)", ErrInvalidArgument, opts.Cipher, strings.Join(Ciphers(), " or "))
}

// Open unlocks a repository with the password and brings the local index up
// to date with the repository's index files and snapshots.
func Open(ctx context.Context, be Backend, opts Options) (*Repository, error) {
	cfg, err := loadConfig(ctx, be)
	if err != nil {
		return nil, err
	}
	dir := opts.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	path := filepath.Join(dir, cfg.ID, "index.db")
	// While the key is derived: the local index's pages (open_ahead.go).
	ahead := startOpenAhead(path)
	defer ahead.wait()
	ms, keyName, err := unlock(ctx, be, cfg, opts)
	if err != nil {
		return nil, err
	}
	signKey := ed25519.NewKeyFromSeed(ms.SignSeed)
	if !bytes.Equal(signKey.Public().(ed25519.PublicKey), cfg.SignPublicKey) {
		return nil, Corruptf("config", "signing key does not match the repository's key (config replaced?)")
	}
	r := &Repository{be: be, cfg: cfg, pol: ms.Polynomial, signKey: signKey, log: opts.Logger,
		keys: map[string]chunk.Key{}, locs: map[string]map[chunk.ID]index.Location{},
		packs: newPackPool(be), groups: newGroupCache(groupCacheIdle), ms: ms, keyName: keyName}
	r.locking.opts = opts.Lock
	copy(r.idKey[:], ms.IDKey)
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.seal, err = newDataSealer(cfg.Encryption, ms.DataKey); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	if r.ix, err = openIndex(path, cfg.ID, r.log); err != nil {
		return nil, err
	}
	if err := r.Sync(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// DefaultCacheDir is where local indexes live unless told otherwise.
func DefaultCacheDir() string {
	if d := os.Getenv("MEMENTO_CACHE_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "memento")
	}
	return filepath.Join(os.TempDir(), "memento-cache")
}

// Config returns the repository's config.
func (r *Repository) Config() Config { return r.cfg }

// Backend returns the backend the repository lives on.
func (r *Repository) Backend() Backend { return r.be }

// Index returns the local index cache.
func (r *Repository) Index() *index.Index { return r.ix }

// Close releases the repository: the groups it decoded, and the catalog
// entries a DeferCatalog left unflushed go to the local index (the bbolt
// file is never held open between operations).
func (r *Repository) Close() error {
	r.groups.Purge()
	return r.flushAllCatalog()
}

// Sync merges index files and snapshots that other processes or hosts wrote
// since the local index last looked.
func (r *Repository) Sync(ctx context.Context) error {
	loaded, err := r.ix.LoadedFiles()
	if err != nil {
		return fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	var names []string
	listed := map[string]bool{}
	err = r.be.List(ctx, DirIndex, func(name string, size int64) error {
		listed[name] = true
		if !loaded[name] {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list index files: %w", err)
	}
	if vanished(loaded, listed) {
		// A prune (or check --repair), here or on another host, replaced
		// index files and deleted packs: blobs the cache still places in
		// them must not be deduplicated against. Start over from the
		// repository's index files.
		if err := r.ResetIndex(); err != nil {
			return err
		}
		names = names[:0]
		for name := range listed {
			names = append(names, name)
		}
	}
	// A damaged index file must not stop backups or restores of everything
	// else: its packs are merely unknown until `check --repair` rewrites it.
	files, damaged, err := r.LoadIndexFiles(ctx, names, true)
	if err != nil {
		return err
	}
	for _, d := range damaged {
		r.log.Warn("index file skipped; run 'memento check --repair'", "err", d)
	}
	if len(files) > 0 {
		if err := r.ix.AddFiles(files); err != nil {
			return err
		}
		r.ForgetLocations()
	}
	return r.syncSnapshots(ctx)
}

// resyncIfPruned reloads the local cache when an index file it merged is
// gone from the repository (Sync does the reset), and does nothing
// otherwise: index files other processes added meanwhile are only new packs,
// which are merged at the next Open.
func (r *Repository) resyncIfPruned(ctx context.Context) error {
	loaded, err := r.ix.LoadedFiles()
	if err != nil {
		return fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	listed := map[string]bool{}
	if err := r.be.List(ctx, DirIndex, func(name string, size int64) error {
		listed[name] = true
		return nil
	}); err != nil {
		return fmt.Errorf("list index files: %w", err)
	}
	if !vanished(loaded, listed) {
		return nil
	}
	return r.Sync(ctx)
}

// vanished reports whether an index file the cache merged, or began to
// merge (LoadedFiles reports a batched merge cut off by a crash as false),
// is gone from the repository: a prune may have deleted its packs, which the
// cache must not place blobs in. A file still listed but not loaded is
// merged again by Sync. Entries not named index/... are the cache's own
// (index rebuild's record of packs read from their headers).
func vanished(loaded, listed map[string]bool) bool {
	for name := range loaded {
		if strings.HasPrefix(name, DirIndex+"/") && !listed[name] {
			return true
		}
	}
	return false
}

// ResetIndex empties the local cache (keeping it bound to this repository).
func (r *Repository) ResetIndex() error {
	if err := r.ix.Reset(); err != nil {
		return fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	if err := r.ix.Bind(r.cfg.ID); err != nil {
		return err
	}
	r.ForgetLocations()
	return nil
}

// indexFileLoads is how many index files LoadIndexFiles reads at once.
// Fetching one is latency-bound on S3, but unlike the other metadata files
// an index file is large (it lists every blob of its packs) and is decoded
// and held in memory until all are merged: four overlap the round trips
// while bounding the decoded files held at once and the cores spent
// decrypting and decoding them.
const indexFileLoads = 4

// LoadIndexFiles reads repository index files in parallel. With tolerant, a
// damaged file is reported in damaged instead of failing the whole load.
func (r *Repository) LoadIndexFiles(ctx context.Context, names []string, tolerant bool) (files []index.File, damaged []string, err error) {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(indexFileLoads)
	for _, name := range names {
		g.Go(func() error {
			var f IndexFile
			err := r.LoadFile(gctx, name, KindIndex, &f)
			if err == nil && f.Version != 1 {
				err = fmt.Errorf("index file %s: %w: version %d (this binary reads 1); upgrade memento", name, ErrFormat, f.Version)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if tolerant && (errors.Is(err, ErrCorrupt) || errors.Is(err, ErrFormat)) {
					damaged = append(damaged, err.Error())
					return nil
				}
				return err
			}
			files = append(files, index.File{Name: name, Packs: f.PackInfos()})
			return nil
		})
	}
	err = g.Wait()
	return files, damaged, err
}

// openIndex opens the local index cache. The cache holds nothing that is not
// in the repository, so a damaged, outdated or foreign file is replaced (and
// refilled by Sync) instead of stopping the operator.
func openIndex(path, repoID string, log *slog.Logger) (*index.Index, error) {
	ix, err := index.OpenBound(path, repoID)
	if err == nil {
		return ix, nil
	}
	if !errors.Is(err, index.ErrCorrupt) && !errors.Is(err, index.ErrVersion) && !errors.Is(err, index.ErrForeign) {
		return nil, err
	}
	log.Warn("local index cache unusable, recreating it from the repository", "path", path, "reason", err)
	if ix, err = index.Recreate(path); err != nil {
		return nil, err
	}
	return ix, ix.Bind(repoID)
}

// ChunkKey returns the ID key of a space. Keys differ per space, so the same
// bytes in two spaces are two different blobs and no chunk is ever shared.
func (r *Repository) ChunkKey(space string) chunk.Key {
	space = StorageSpace(space)
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[space]
	if !ok {
		k = chunk.DeriveKey(r.idKey, space)
		r.keys[space] = k
	}
	return k
}

func (r *Repository) ForgetLocations() {
	r.mu.Lock()
	r.locs = map[string]map[chunk.ID]index.Location{}
	r.treesCached = nil
	r.dataCached = nil
	r.mu.Unlock()
}

// Locate finds where blobs of a space are stored, through an in-memory cache
// in front of the bbolt index.
func (r *Repository) Locate(space string, ids []chunk.ID) (map[chunk.ID]index.Location, error) {
	space = StorageSpace(space)
	out := make(map[chunk.ID]index.Location, len(ids))
	var miss []chunk.ID
	r.mu.Lock()
	cache := r.locs[space]
	for _, id := range ids {
		if l, ok := cache[id]; ok {
			out[id] = l
		} else {
			miss = append(miss, id)
		}
	}
	r.mu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	found, err := r.ix.Lookup(space, miss)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	r.cacheLocations(space, found)
	for id, l := range found {
		out[id] = l
	}
	for _, id := range miss {
		if _, ok := found[id]; !ok {
			return out, fmt.Errorf("blob %s of space %q: %w in the index (run 'memento index rebuild' if packs were copied in by hand)", id.Short(), space, ErrNotFound)
		}
	}
	return out, nil
}

// cacheTreeLocations puts the location of every tree blob of a (storage)
// space into the location cache, in one pass over the space's blobs in the
// index, the first time a tree of the space is missing from the cache:
// whoever walks a snapshot (restore, backup against its parent, verify,
// the mount) then reads its trees without an index transaction per
// directory (each opens and maps the index file: on 1,300 directories that
// was 40 % of an unchanged backup's CPU). Trees stored later are looked up
// one by one, as before. A failing scan is left to the tree's own lookup
// to report.
func (r *Repository) cacheTreeLocations(space string, id chunk.ID) {
	r.mu.Lock()
	_, cached := r.locs[space][id]
	done := r.treesCached[space]
	r.mu.Unlock()
	if cached || done {
		return
	}
	trees, err := r.ix.SpaceLocations(space, treesToCache())
	if err != nil {
		return
	}
	r.cacheLocations(space, trees)
	r.markTreesCached(space)
}

// maxCachedTrees bounds the tree locations one pass puts into the cache
// for a space, about 30 MiB: a space with more trees (a tree of millions
// of files kept for years) has the rest looked up one by one.
const maxCachedTrees = 1 << 18

// treesToCache returns the filter of a pass that caches tree locations: tree
// blobs, up to maxCachedTrees of them.
func treesToCache() func(blobType uint8) bool {
	n := 0
	return func(t uint8) bool {
		if BlobType(t) != TreeBlob || n >= maxCachedTrees {
			return false
		}
		n++
		return true
	}
}

func (r *Repository) markTreesCached(space string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.treesCached == nil {
		r.treesCached = map[string]bool{}
	}
	r.treesCached[space] = true
}

// cacheLocations adds locations of blobs of a (storage) space to the
// location cache Locate reads first.
func (r *Repository) cacheLocations(space string, locs map[chunk.ID]index.Location) {
	if len(locs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.locs[space] == nil {
		r.locs[space] = make(map[chunk.ID]index.Location, len(locs))
	}
	for id, l := range locs {
		r.locs[space][id] = l
	}
}

// Logger returns the logger the repository was opened with.
func (r *Repository) Logger() *slog.Logger { return r.log }

// Polynomial returns the repository's content-defined chunking polynomial.
func (r *Repository) Polynomial() chunker.Pol { return r.pol }
