package repo

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/zeebo/blake3"
)

// KeyCache keeps unlocked master secrets between commands, so that a
// command run soon after another skips argon2id (docs/security.md). It is
// opt-in; the implementation of the command line is the Linux kernel
// keyring (package repo/keycache), with a timeout.
type KeyCache interface {
	// Load returns what Store stored for the repository, or nil and no
	// error when nothing is cached (or it expired).
	Load(repoID string) ([]byte, error)
	// Store caches entry for the repository, replacing what was there.
	Store(repoID string, entry []byte) error
	// Forget removes the repository's entry, if any.
	Forget(repoID string) error
}

// keyCacheEntry is what a KeyCache holds for one repository. It never
// leaves the machine (a kernel keyring is memory only), so it is not part of
// the repository format; Version guards against an entry of another
// memento version.
type keyCacheEntry struct {
	Version int           `json:"version"`
	Key     string        `json:"key"`    // the key file that opened the repository
	Secret  *masterSecret `json:"secret"` // what it unlocked
	// Verifier is BLAKE3 keyed by a key derived from the master secret, of
	// the password: a command with another password does not get the
	// cached secret (it runs argon2id and gets exit 4 as without a cache).
	// It tells nothing the secret next to it does not.
	Verifier []byte `json:"verifier"`
}

const keyCacheVersion = 1

func passwordVerifier(ms *masterSecret, password string) []byte {
	var k [32]byte
	blake3.DeriveKey("memento 2026-12 key cache password verifier", ms.DataKey, k[:])
	h, err := blake3.NewKeyed(k[:])
	if err != nil {
		panic(err) // a 32-byte key is always accepted
	}
	h.Write([]byte(password))
	return h.Sum(nil)
}

// unlock finds the master secret: from the key cache when one is given and
// holds the repository's for this password, else from the key files (then
// the cache is filled). An insecure repository (kdf "none") is never cached:
// there is no cost to save.
func unlock(ctx context.Context, be Backend, cfg Config, opts Options) (*masterSecret, string, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	cache := opts.KeyCache
	if cfg.Encryption == EncryptionNone {
		cache = nil
	}
	if cache != nil {
		ms, name, err := loadCachedKey(cache, cfg.ID, opts.Password)
		switch {
		case err != nil:
			log.Warn("key cache: ignoring the cached key", "repository", cfg.ID[:8], "err", err)
		case ms != nil:
			log.Debug("key cache: unlocked from the cache", "repository", cfg.ID[:8], "key", ShortHex(NameHash(name)))
			return ms, name, nil
		}
	}
	ms, name, err := loadMasterSecret(ctx, be, opts.Password)
	if err != nil || cache == nil {
		return ms, name, err
	}
	b, err := json.Marshal(keyCacheEntry{Version: keyCacheVersion, Key: name, Secret: ms, Verifier: passwordVerifier(ms, opts.Password)})
	if err == nil {
		err = cache.Store(cfg.ID, b)
	}
	if err != nil {
		log.Warn("key cache: could not cache the key; every command unlocks with the password", "err", err)
	} else {
		log.Debug("key cache: stored the unlocked key", "repository", cfg.ID[:8])
	}
	return ms, name, nil
}

// loadCachedKey returns the cached secret, or nil when there is none or it
// is not for this password.
func loadCachedKey(cache KeyCache, repoID, password string) (*masterSecret, string, error) {
	b, err := cache.Load(repoID)
	if err != nil || b == nil {
		return nil, "", err
	}
	var e keyCacheEntry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, "", fmt.Errorf("cached entry: %w", err)
	}
	if e.Version != keyCacheVersion || e.Secret == nil {
		return nil, "", fmt.Errorf("cached entry of version %d", e.Version)
	}
	if err := e.Secret.validate(); err != nil {
		return nil, "", fmt.Errorf("cached entry: %w", err)
	}
	if subtle.ConstantTimeCompare(e.Verifier, passwordVerifier(e.Secret, password)) != 1 {
		return nil, "", nil // another password: unlock the usual way
	}
	return e.Secret, e.Key, nil
}

// LoadConfig reads the repository's config without unlocking it (what a
// command needs to name the repository's key cache entry).
func LoadConfig(ctx context.Context, be Backend) (Config, error) { return loadConfig(ctx, be) }

// MemKeyCache is a KeyCache in the process's memory, for a long-running
// process that opens the same repository again and again (the agent's
// sessions) to pay argon2id once: it holds what an open Repository holds
// anyway, one entry per repository the process opened, for as long as the
// value is kept.
type MemKeyCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemKeyCache returns an empty in-memory key cache.
func NewMemKeyCache() *MemKeyCache { return &MemKeyCache{m: map[string][]byte{}} }

// Load returns the entry of the repository, or nil.
func (c *MemKeyCache) Load(repoID string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[repoID], nil
}

// Store replaces the entry of the repository.
func (c *MemKeyCache) Store(repoID string, entry []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[repoID] = bytes.Clone(entry)
	return nil
}

// Forget removes the entry of the repository.
func (c *MemKeyCache) Forget(repoID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, repoID)
	return nil
}
