package chunk

import (
	"fmt"
	"sync"

	"github.com/zeebo/blake3"
)

// KeySize is the length of a Key in bytes.
const KeySize = 32

// keyContext is the BLAKE3 derive_key context for chunk-ID keys. It is part of
// the repository format: changing it changes every chunk ID, so a new format
// gets a new string instead of an edit.
const keyContext = "memento 2026-11 chunk id v1"

// Key is the BLAKE3 key that turns chunk plaintext into an ID. Each space has
// its own Key (see DeriveKey), so identical bytes in two spaces get different
// IDs and are never shared. The zero Key is valid but must not be used for a
// real repository. Key is comparable.
type Key struct {
	k [KeySize]byte
}

// DeriveKey derives the chunk-ID key of one space from the repository master
// key with BLAKE3 derive_key (context keyContext, material master || space).
// Distinct spaces give independent keys; the master key cannot be recovered
// from a Key.
func DeriveKey(master [32]byte, space string) Key {
	material := make([]byte, 0, len(master)+len(space))
	material = append(material, master[:]...)
	material = append(material, space...)
	var k Key
	blake3.DeriveKey(keyContext, material, k.k[:])
	return k
}

// KeyFromBytes makes a Key from 32 raw bytes, e.g. read from a repository
// config or produced by DeriveKey elsewhere.
func KeyFromBytes(b []byte) (Key, error) {
	var k Key
	if len(b) != KeySize {
		return k, fmt.Errorf("chunk key: %d bytes, want %d: %w", len(b), KeySize, ErrInvalidParams)
	}
	copy(k.k[:], b)
	return k, nil
}

// Bytes returns a copy of the raw key.
func (k Key) Bytes() []byte {
	return append([]byte(nil), k.k[:]...)
}

// hasherPools holds, per key, a pool of keyed BLAKE3 hashers. A hasher is
// ~9 KiB of state; allocating one per chunk would dominate the garbage for
// small (warm page file) chunks. Reset keeps the key, so pooled hashers are
// reusable. The map only grows by one entry per distinct key (per space).
var hasherPools sync.Map // [KeySize]byte -> *sync.Pool

func (k Key) pool() *sync.Pool {
	if p, ok := hasherPools.Load(k.k); ok {
		return p.(*sync.Pool)
	}
	key := k.k
	p := &sync.Pool{New: func() any {
		h, err := blake3.NewKeyed(key[:])
		if err != nil {
			panic(err) // unreachable: key is always KeySize bytes
		}
		return h
	}}
	actual, _ := hasherPools.LoadOrStore(k.k, p)
	return actual.(*sync.Pool)
}

// Sum returns the ID of data: its keyed BLAKE3-256 under k. Safe for
// concurrent use.
func (k Key) Sum(data []byte) ID {
	p := k.pool()
	h := p.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	p.Put(h)
	return id
}
