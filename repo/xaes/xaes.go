// Package xaes implements XAES-256-GCM (https://c2sp.org/XAES-256-GCM): an
// AEAD with a 256-bit key and a 192-bit nonce that derives, per message, an
// AES-256-GCM key from the key and the first 96 bits of the nonce with the
// NIST SP 800-108r1 counter-mode KDF over CMAC-AES-256, and seals with it and
// the last 96 bits of the nonce. Random nonces are safe for about 2^80
// messages under one key, where AES-256-GCM's 96-bit random nonces are safe
// for 2^32: the reason memento does not use plain AES-GCM.
//
// The AES-256-GCM underneath is the standard library's, which uses AES-NI,
// VAES and carry-less multiplication where the CPU has them.
//
// Deriving the key and setting up its GCM (key schedule, multiplication
// table, allocations) is most of the cost of a small message, so it is done
// once per nonce prefix where it can be: a writer that seals many messages
// with one random 12-byte prefix and a random 12-byte suffix each seals
// with Prefixed (the derivation done once); AEAD's own Seal and Open keep
// the derivations of the last few prefixes they saw (a fixed number of
// slots, see cacheSlots), so opening the blobs of one pack one after another
// derives once. Either way the ciphertext is XAES-256-GCM's for that key and
// nonce, byte for byte.
package xaes

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync/atomic"
)

const (
	KeySize   = 32
	NonceSize = 24
	Overhead  = 16
	// PrefixSize is the part of the nonce the per-message key is derived
	// from; the rest is AES-256-GCM's 96-bit nonce under that key.
	PrefixSize = 12
)

// cacheSlots is how many derived keys an AEAD keeps (direct-mapped on the
// prefix): enough for the packs a restore's or a mount's readers open at
// the same time, about 1.3 KiB each.
const cacheSlots = 16

// AEAD is XAES-256-GCM under one key. It is safe for concurrent use.
type AEAD struct {
	block cipher.Block // AES-256 under the input key
	k1    [aes.BlockSize]byte
	cache [cacheSlots]atomic.Pointer[Prefixed]
}

var _ cipher.AEAD = (*AEAD)(nil)

// New returns XAES-256-GCM keyed with key, which must be 32 bytes.
func New(key []byte) (*AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("xaes: key is %d bytes, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a := &AEAD{block: b}
	// The CMAC subkey K1: L = AES(K, 0^128), K1 = L<<1, reduced by
	// x^128 + x^7 + x^2 + x + 1 when L's top bit is set.
	var l [aes.BlockSize]byte
	b.Encrypt(l[:], l[:])
	msb := l[0] >> 7
	for i := 0; i < aes.BlockSize-1; i++ {
		a.k1[i] = l[i]<<1 | l[i+1]>>7
	}
	a.k1[aes.BlockSize-1] = l[aes.BlockSize-1]<<1 ^ byte(subtle.ConstantTimeSelect(int(msb), 0x87, 0))
	return a, nil
}

func (*AEAD) NonceSize() int { return NonceSize }
func (*AEAD) Overhead() int  { return Overhead }

// deriveKey is the KDF: Kx = CMAC(K, 0x00 0x01 'X' 0x00 N[:12]) ||
// CMAC(K, 0x00 0x02 'X' 0x00 N[:12]), each CMAC a single block.
func (a *AEAD) deriveKey(nonce []byte) [KeySize]byte {
	var kx [KeySize]byte
	m := kx[:]
	m[0], m[1], m[2], m[3] = 0, 1, 'X', 0
	copy(m[4:16], nonce[:12])
	copy(m[16:32], m[:16])
	m[17] = 2
	subtle.XORBytes(m[:16], m[:16], a.k1[:])
	subtle.XORBytes(m[16:], m[16:], a.k1[:])
	a.block.Encrypt(m[:16], m[:16])
	a.block.Encrypt(m[16:], m[16:])
	return kx
}

// Prefixed is XAES-256-GCM for the nonces that begin with one 12-byte
// prefix: the AES-256-GCM under the key derived from it. It is safe for
// concurrent use (the standard library's GCM only reads its key schedule
// and table while sealing and opening).
type Prefixed struct {
	prefix [PrefixSize]byte
	gcm    cipher.AEAD
}

// Prefix derives the key of the nonces that begin with prefix, which must
// be 12 bytes. It does not use or fill the AEAD's cache.
func (a *AEAD) Prefix(prefix []byte) *Prefixed {
	if len(prefix) != PrefixSize {
		panic("xaes: nonce prefix is not 12 bytes")
	}
	var n [NonceSize]byte
	copy(n[:], prefix)
	kx := a.deriveKey(n[:])
	b, err := aes.NewCipher(kx[:])
	if err != nil {
		panic("xaes: " + err.Error()) // a 32-byte key is always accepted
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("xaes: " + err.Error()) // AES has 16-byte blocks
	}
	return &Prefixed{prefix: [PrefixSize]byte(prefix), gcm: g}
}

// NoncePrefix returns the 12-byte prefix p seals under.
func (p *Prefixed) NoncePrefix() [PrefixSize]byte { return p.prefix }

// Seal is AEAD.Seal for a 24-byte nonce that begins with p's prefix; it
// panics for another nonce.
func (p *Prefixed) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != NonceSize || [PrefixSize]byte(nonce[:PrefixSize]) != p.prefix {
		panic("xaes: nonce does not begin with the prefix")
	}
	return p.gcm.Seal(dst, nonce[PrefixSize:], plaintext, additionalData)
}

// cached returns the derivation for nonce's prefix from the cache, or
// derives it and keeps it in its slot, replacing the one there. The slot is
// chosen by the prefix's first byte: random nonces spread evenly, and a
// chosen one only costs a derivation.
func (a *AEAD) cached(nonce []byte) *Prefixed {
	if len(nonce) != NonceSize {
		panic("xaes: nonce is not 24 bytes")
	}
	slot := &a.cache[nonce[0]%cacheSlots]
	if p := slot.Load(); p != nil && [PrefixSize]byte(nonce[:PrefixSize]) == p.prefix {
		return p
	}
	p := a.Prefix(nonce[:PrefixSize])
	slot.Store(p)
	return p
}

// Seal is cipher.AEAD's Seal with a 24-byte nonce.
func (a *AEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	return a.cached(nonce).gcm.Seal(dst, nonce[PrefixSize:], plaintext, additionalData)
}

var errOpen = errors.New("xaes: message authentication failed")

// Open is cipher.AEAD's Open with a 24-byte nonce.
func (a *AEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		return nil, errOpen
	}
	out, err := a.cached(nonce).gcm.Open(dst, nonce[PrefixSize:], ciphertext, additionalData)
	if err != nil {
		return nil, errOpen
	}
	return out, nil
}
