package repo

import (
	"context"

	"golang.org/x/crypto/chacha20poly1305"

	"memento/chunk"
)

// ReadDataBlobs reads the data blobs (chunks) ids of a space and calls fn once
// per id, with its verified plaintext or with the error that kept it from
// being read. Blobs that are neighbours in a pack are fetched with one
// ranged read per run (see pack_scan.go), so a reader of many small chunks
// (a FUSE mount reading a page file of 32 KiB chunks) pays one request per
// few MiB instead of one per chunk, and a local repository's runs are read
// around the page cache (blobRun.fetch). The ids are read in pack order, not in
// the order given: backup packs a file's chunks roughly in file order, but
// its parallel workers swap neighbours, and a run only grows forwards. Each
// blob is authenticated, decompressed and checked against its ID exactly as
// ReadBlob does it.
//
// fn is called from the calling goroutine, in an unspecified order. data is
// a fresh slice that fn may keep (a cache holds it): it is never reused. An
// id given twice is read twice. A blob the index does not know, or that a
// damaged run makes unreadable, gets its own error; the others are still
// delivered. ReadDataBlobs returns only ctx's error, when it stopped early;
// every id not yet delivered then gets that error too.
func (r *Repository) ReadDataBlobs(ctx context.Context, space string, ids []chunk.ID, fn func(i int, data []byte, err error)) error {
	return r.StreamBlobs(ctx, space, DataBlob, ids, StreamOptions{Sort: true, AroundCache: true, Buffer: BufferFresh}, func(b StreamBlob) error {
		fn(b.Index, b.Data, b.Err)
		return nil
	})
}

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
