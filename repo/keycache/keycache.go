// Package keycache keeps unlocked repository keys in the Linux kernel
// keyring (keyrings(7)) for a limited time, so that commands run one after
// another skip argon2id. It is opt-in (--key-cache / MEMENTO_KEY_CACHE;
// docs/security.md says why and what it exposes).
//
// An entry is a "user" key named "memento:<repository id>" in the caller's
// session keyring, readable only by its possessors (the processes of that
// session: the shell that ran memento and its children), with a kernel
// timeout: the kernel removes it when it expires, also if no memento runs
// again. Nothing is written to disk.
package keycache

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnsupported is returned where there is no kernel keyring (not Linux).
var ErrUnsupported = errors.New("the key cache needs the Linux kernel keyring")

// MaxTTL bounds how long an entry may live.
const MaxTTL = 24 * time.Hour

// Cache is a kernel keyring key cache whose entries live TTL.
type Cache struct {
	TTL time.Duration
}

// New returns a cache whose entries expire after ttl (1 s .. MaxTTL).
func New(ttl time.Duration) (*Cache, error) {
	if ttl < time.Second || ttl > MaxTTL {
		return nil, fmt.Errorf("key cache timeout %s: want 1s..%s", ttl, MaxTTL)
	}
	return &Cache{TTL: ttl}, nil
}

func description(repoID string) string { return "memento:" + repoID }
