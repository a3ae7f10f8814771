package chunk

import (
	"encoding/binary"
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
// real repository. Compare keys with Equal: a Key also carries its pool of
// hashers, so == tells copies of one Key apart from another Key of the same
// bytes.
//
// A Key owns its keyed BLAKE3 hashers (a hasher is ~9 KiB of state;
// allocating one per chunk would dominate the garbage for small, warm page
// file chunks): copies share the pool, which lives as long as they do. The
// repository derives each space's Key once and keeps it, so its hashers are
// reused for every chunk of the space and go away with the repository; no
// process-wide map holds them.
type Key struct {
	k       [KeySize]byte
	hashers *sync.Pool // *blake3.Hasher keyed with k; nil for the zero Key
	wide    *sync.Pool // *b3Wide keyed with k (inputs of b3WideMin bytes and more); nil for the zero Key
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
	k.hashers, k.wide = newHasherPool(k.k), newWidePool(k.k)
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
	k.hashers, k.wide = newHasherPool(k.k), newWidePool(k.k)
	return k, nil
}

// Bytes returns a copy of the raw key.
func (k Key) Bytes() []byte {
	return append([]byte(nil), k.k[:]...)
}

// Equal reports whether k and o are the same key bytes.
func (k Key) Equal(o Key) bool { return k.k == o.k }

// newHasherPool returns a pool of hashers keyed with key. Reset keeps the
// key, so pooled hashers are reusable.
func newHasherPool(key [KeySize]byte) *sync.Pool {
	return &sync.Pool{New: func() any { return newHasher(key) }}
}

// newWidePool returns a pool of wide hashers keyed with key, or nil
// without AVX-512.
func newWidePool(key [KeySize]byte) *sync.Pool {
	if !haveB3Hash16 {
		return nil
	}
	var w [8]uint32
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	return &sync.Pool{New: func() any { return newB3Wide(b3Hash16AVX512, w, b3KeyedHash) }}
}

func newHasher(key [KeySize]byte) *blake3.Hasher {
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		panic(err) // unreachable: key is always KeySize bytes
	}
	return h
}

// Sum returns the ID of data: its keyed BLAKE3-256 under k. Safe for
// concurrent use. Inputs of two chunks (2 KiB) and more go sixteen BLAKE3
// chunks at a time with AVX-512 where it runs (blake3wide.go), the same
// digest as github.com/zeebo/blake3's.
func (k Key) Sum(data []byte) ID {
	if k.wide != nil && len(data) >= b3WideMin {
		h := k.wide.Get().(*b3Wide)
		id := ID(h.sum(data))
		k.wide.Put(h)
		return id
	}
	p := k.hashers
	var h *blake3.Hasher
	if p != nil {
		h = p.Get().(*blake3.Hasher)
		h.Reset()
	} else {
		h = newHasher(k.k) // the zero Key (tests): no pool to reuse
	}
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	if p != nil {
		p.Put(h)
	}
	return id
}
