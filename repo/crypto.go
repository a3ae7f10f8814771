package repo

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"

	"memento/repo/xaes"
)

// sealer authenticates, and unless the repository was created with
// --insecure-no-encryption also encrypts, every blob and metadata file. The
// associated data binds a ciphertext to its role (blob type and ID, file kind),
// so a valid ciphertext moved to another place does not open.
type sealer interface {
	seal(dst, plain, ad []byte) []byte
	open(dst, sealed, ad []byte) ([]byte, error)
	overhead() int
	// batch returns the sealer of one pack's blobs and header (a writer
	// sealing many messages at once); it seals and opens like this one
	// and is safe for concurrent use. XAES-256-GCM's shares one random
	// nonce prefix, so its key is derived once (see prefixSealer); the
	// others return themselves.
	batch() sealer
}

var errAuth = errors.New("authentication failed")

// aeadSealer is an AEAD with a random 192-bit nonce per message, stored
// before the ciphertext: XChaCha20-Poly1305 (key files, and repositories
// created before XAES-256-GCM was the default) or XAES-256-GCM. Random
// nonces of that size never collide in practice, so no counter state has to
// be shared between concurrent writers or hosts. Both have a 24-byte nonce
// and a 16-byte tag, so a sealed object has the same layout and size either
// way.
type aeadSealer struct {
	aead cipher.AEAD
	xaes *xaes.AEAD // aead, when it is XAES-256-GCM
}

// nonceSize is the nonce of every aeadSealer (sealed objects start with it).
const nonceSize = 24

func newAEADSealer(key []byte) (*aeadSealer, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return &aeadSealer{aead: a}, nil
}

// newDataSealer is the sealer of a repository's blobs and metadata files for
// the encryption its config names.
func newDataSealer(encryption string, key []byte) (sealer, error) {
	switch encryption {
	case EncryptionNone:
		if len(key) != 32 {
			return nil, fmt.Errorf("data key: %d bytes, want 32", len(key))
		}
		return &macSealer{key: [32]byte(key)}, nil
	case EncryptionXChaCha:
		return newAEADSealer(key)
	case EncryptionXAES:
		a, err := xaes.New(key)
		if err != nil {
			return nil, fmt.Errorf("data key: %w", err)
		}
		return &aeadSealer{aead: a, xaes: a}, nil
	}
	return nil, fmt.Errorf("%w: unknown encryption %q", ErrFormat, encryption)
}

func (s *aeadSealer) overhead() int { return nonceSize + s.aead.Overhead() }

// randomFill fills b from crypto/rand.
func randomFill(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("memento: crypto/rand failed: " + err.Error()) // crypto/rand never fails on Linux
	}
}

// The nonce is drawn in place, in dst (a nonce array of its own escaped
// to the heap through crypto/rand's io.Reader: an allocation per seal).
func (s *aeadSealer) seal(dst, plain, ad []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, nonceSize)...)
	nonce := dst[start:]
	randomFill(nonce)
	return s.aead.Seal(dst, nonce, plain, ad)
}

// batch: XChaCha20-Poly1305's per-message subkey (HChaCha20, one ChaCha20
// block, no allocation) costs little next to the rest of a seal, and its
// subkey takes 16 of the 24 nonce bytes, which would leave 64 random bits
// per message under a shared one: it keeps a whole random nonce per
// message. See docs/security.md, "Nonces".
func (s *aeadSealer) batch() sealer {
	if s.xaes == nil {
		return s
	}
	var prefix [xaes.PrefixSize]byte
	randomFill(prefix[:])
	return &prefixSealer{aeadSealer: s, x: s.xaes.Prefix(prefix[:])}
}

// prefixSealer seals one pack's messages with XAES-256-GCM under one random
// 12-byte nonce prefix, each with its own random 12-byte suffix: the
// per-message key XAES derives from the prefix is derived once, and each
// message still has a random 96-bit AES-GCM nonce under it. A pack holds at
// most maxPackBlobs blobs and its header, so a derived key seals at most
// 2^20+1 messages (docs/security.md, "Nonces"). The stored form is the
// same; a reader takes each nonce from the sealed object.
type prefixSealer struct {
	*aeadSealer // open and overhead
	x           *xaes.Prefixed
}

func (s *prefixSealer) seal(dst, plain, ad []byte) []byte {
	start, prefix := len(dst), s.x.NoncePrefix()
	dst = append(dst, prefix[:]...)
	dst = append(dst, make([]byte, nonceSize-len(prefix))...)
	nonce := dst[start:]
	randomFill(nonce[len(prefix):])
	return s.x.Seal(dst, nonce, plain, ad)
}

func (s *prefixSealer) batch() sealer { return s.aeadSealer.batch() }

func (s *aeadSealer) open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < s.overhead() {
		return nil, fmt.Errorf("%w: %d bytes is shorter than nonce and tag", errAuth, len(sealed))
	}
	n := nonceSize
	out, err := s.aead.Open(dst, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, errAuth
	}
	return out, nil
}

// macSealer is used by repositories created with --insecure-no-encryption: the
// bytes are stored in the clear, but a keyed BLAKE3 MAC still detects every
// change, so integrity never depends on encryption being on.
type macSealer struct{ key [32]byte }

const macSize = 32

func (s *macSealer) overhead() int { return macSize }

func (s *macSealer) batch() sealer { return s }

func (s *macSealer) mac(plain, ad []byte) [32]byte {
	h, _ := blake3.NewKeyed(s.key[:])
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], uint64(len(ad)))
	h.Write(l[:])
	h.Write(ad)
	h.Write(plain)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func (s *macSealer) seal(dst, plain, ad []byte) []byte {
	sum := s.mac(plain, ad)
	dst = append(dst, plain...)
	return append(dst, sum[:]...)
}

func (s *macSealer) open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < macSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the MAC", errAuth, len(sealed))
	}
	plain := sealed[:len(sealed)-macSize]
	want := s.mac(plain, ad)
	if [32]byte(sealed[len(sealed)-macSize:]) != want {
		return nil, errAuth
	}
	return append(dst, plain...), nil
}
