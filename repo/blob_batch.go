package repo

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"

	"memento/chunk"
	"memento/index"
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
	const t = DataBlob
	if len(ids) == 0 {
		return nil
	}
	locs, err := r.Locate(space, ids)
	if err != nil {
		// Some blob is missing from the index: let ReadBlob say which,
		// blob by blob, and still read the others.
		for i, id := range ids {
			if cerr := ctx.Err(); cerr != nil {
				fn(i, nil, cerr)
				continue
			}
			data, err := r.ReadBlob(ctx, space, t, id)
			fn(i, data, err)
		}
		return ctx.Err()
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		la, lb := locs[ids[a]], locs[ids[b]]
		if c := bytes.Compare(la.Pack[:], lb.Pack[:]); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(la.Offset, lb.Offset), cmp.Compare(a, b))
	})
	var run *BlobRun
	var which []int // run.blobs[k] is ids[which[k]]
	for _, i := range order {
		if run != nil && run.Add(ids[i], locs[ids[i]], RunMaxBytes) {
			which = append(which, i)
			continue
		}
		if run != nil {
			r.readRunInto(ctx, space, t, run, which, fn)
		}
		run, which = NewBlobRun(ids[i], locs[ids[i]]), append(which[:0], i)
	}
	r.readRunInto(ctx, space, t, run, which, fn)
	return ctx.Err()
}

// readRunInto reads one run and hands each of its blobs, run.blobs[k] being
// ids[which[k]], to fn as fresh slices.
func (r *Repository) readRunInto(ctx context.Context, space string, t BlobType, run *BlobRun, which []int, fn func(int, []byte, error)) {
	if err := ctx.Err(); err != nil {
		for k := range run.Blobs {
			fn(which[k], nil, err)
		}
		return
	}
	rb, rerr := run.Fetch(ctx, r.be)
	for k, b := range run.Blobs {
		if rerr != nil {
			fn(which[k], nil, rerr)
			continue
		}
		data, err := r.openBlobInPlace(run.Sealed(rb.B, k), space, t, b.ID, b.Loc)
		fn(which[k], data, err)
	}
	if rerr == nil {
		rb.Free()
	}
}

// openBlobInPlace is openBlob for a blob in a run's buffer, which is
// scratch: it is decrypted where it lies (the blobs of a run never overlap)
// and decompressed, or copied, into a fresh slice of its raw length, which
// is what is checked against the ID and returned. Compared with openBlob it
// saves an allocation and a copy of every blob, the largest cost of reading
// 1 GiB through a mount after the cryptography itself. The checks and their
// errors are openBlob's.
func (r *Repository) openBlobInPlace(sealed []byte, space string, t BlobType, id chunk.ID, loc index.Location) ([]byte, error) {
	what := "pack " + ShortHex(loc.Pack)
	plain, err := openInPlace(r.seal, sealed, BlobAD(t, id))
	if err != nil {
		return nil, &CorruptError{What: what, Detail: fmt.Sprintf("%s blob %s at offset %d", t, id.Short(), loc.Offset), Err: err}
	}
	var raw []byte
	if loc.Flags&FlagCompressed != 0 {
		raw, err = chunk.Decompress(make([]byte, 0, loc.RawLength), plain)
		if err != nil {
			return nil, &CorruptError{What: what, Detail: fmt.Sprintf("%s blob %s: decompress", t, id.Short()), Err: err}
		}
	} else {
		raw = bytes.Clone(plain)
	}
	if uint32(len(raw)) != loc.RawLength {
		return nil, Corruptf(what, "%s blob %s: %d bytes, index says %d", t, id.Short(), len(raw), loc.RawLength)
	}
	if r.ChunkKey(space).Sum(raw) != id {
		return nil, Corruptf(what, "%s blob %s: content does not match its ID", t, id.Short())
	}
	return raw, nil
}

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
