package repo

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"memento/chunk"
	"memento/index"
)

// OpenForCheck opens a repository like Open, except that repository index
// files that do not verify are skipped (and returned) instead of failing
// the open: a damaged index file must not stop `check --repair`, which
// replaces it. Everything else (config, keys, signing key) is as strict as
// Open. The skipped files are reported again by Check.
func OpenForCheck(ctx context.Context, be Backend, opts Options) (*Repository, []error, error) {
	r, err := Open(ctx, be, opts)
	if err == nil || !errors.Is(err, ErrCorrupt) {
		return r, nil, err
	}
	cfg, err := loadConfig(ctx, be)
	if err != nil {
		return nil, nil, err
	}
	ms, err := loadMasterSecret(ctx, be, opts.Password)
	if err != nil {
		return nil, nil, err
	}
	signKey := ed25519.NewKeyFromSeed(ms.SignSeed)
	if !bytes.Equal(signKey.Public().(ed25519.PublicKey), cfg.SignPublicKey) {
		return nil, nil, corrupt("config", "signing key does not match the repository's key (config replaced?)")
	}
	r = &Repository{be: be, cfg: cfg, pol: ms.Polynomial, signKey: signKey, log: opts.Logger,
		keys: map[string]chunk.Key{}, locs: map[string]map[chunk.ID]index.Location{}}
	copy(r.idKey[:], ms.IDKey)
	if r.log == nil {
		r.log = slog.Default()
	}
	if cfg.Encryption == EncryptionNone {
		r.seal = &macSealer{key: [32]byte(ms.DataKey)}
	} else if r.seal, err = newAEADSealer(ms.DataKey); err != nil {
		return nil, nil, err
	}
	dir := opts.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	path := filepath.Join(dir, cfg.ID, "index.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("cache dir: %w", err)
	}
	if r.ix, err = index.Open(path); err != nil {
		if r.ix, err = index.Recreate(path); err != nil {
			return nil, nil, fmt.Errorf("local index %s: %w", path, err)
		}
	}
	if err := r.ix.Bind(cfg.ID); err != nil {
		return nil, nil, fmt.Errorf("local index %s: %w", path, err)
	}
	loaded, err := r.ix.LoadedFiles()
	if err != nil {
		return nil, nil, fmt.Errorf("local index %s: %w", path, err)
	}
	var skipped []error
	err = r.be.List(ctx, dirIndex, func(name string, size int64) error {
		if loaded[name] {
			return nil
		}
		var f indexFile
		if err := r.loadFile(ctx, name, kindIndex, &f); err != nil {
			if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrFormat) {
				skipped = append(skipped, err)
				return nil
			}
			return err
		}
		return r.ix.AddFile(name, f.packInfos())
	})
	if err != nil {
		return nil, nil, fmt.Errorf("index files: %w", err)
	}
	if err := r.syncSnapshots(ctx); err != nil {
		return nil, nil, err
	}
	return r, skipped, nil
}
