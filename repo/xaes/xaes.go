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
package xaes

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
)

const (
	KeySize   = 32
	NonceSize = 24
	Overhead  = 16
)

// AEAD is XAES-256-GCM under one key. It is safe for concurrent use.
type AEAD struct {
	block cipher.Block // AES-256 under the input key
	k1    [aes.BlockSize]byte
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

func (a *AEAD) gcm(nonce []byte) cipher.AEAD {
	if len(nonce) != NonceSize {
		panic("xaes: nonce is not 24 bytes")
	}
	kx := a.deriveKey(nonce)
	b, err := aes.NewCipher(kx[:])
	if err != nil {
		panic("xaes: " + err.Error()) // a 32-byte key is always accepted
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("xaes: " + err.Error()) // AES has 16-byte blocks
	}
	return g
}

// Seal is cipher.AEAD's Seal with a 24-byte nonce.
func (a *AEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	return a.gcm(nonce).Seal(dst, nonce[12:], plaintext, additionalData)
}

var errOpen = errors.New("xaes: message authentication failed")

// Open is cipher.AEAD's Open with a 24-byte nonce.
func (a *AEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		return nil, errOpen
	}
	out, err := a.gcm(nonce).Open(dst, nonce[12:], ciphertext, additionalData)
	if err != nil {
		return nil, errOpen
	}
	return out, nil
}
