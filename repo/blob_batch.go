package repo

import (
	"golang.org/x/crypto/chacha20poly1305"
)

// The in-place open of a run's blobs (openSealed with inPlace) decrypts each
// blob where it lies in the run's buffer, which is scratch (the blobs of a
// run never overlap), and decompresses, or copies, it into a fresh slice of
// its raw length, which is what is checked against the ID and returned.
// Compared with OpenBlob it saves an allocation and a copy of every blob,
// the largest cost of reading 1 GiB through a mount after the cryptography
// itself. The checks and their errors are OpenBlob's.

// openInPlace authenticates and decrypts sealed into its own storage and
// returns the plaintext, a subslice of sealed.
func openInPlace(s sealer, sealed, ad []byte) ([]byte, error) {
	switch s.(type) {
	case *aeadSealer:
		// The AEAD decrypts in place when the output starts exactly where
		// the ciphertext does, after the nonce.
		if n := chacha20poly1305.NonceSizeX; len(sealed) >= n {
			return s.open(sealed[n:n], sealed, ad)
		}
	case *macSealer:
		return s.open(sealed[:0], sealed, ad) // the plaintext is sealed's prefix
	}
	return s.open(nil, sealed, ad)
}
