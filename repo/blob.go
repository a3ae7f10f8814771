package repo

import (
	"context"
	"errors"
	"fmt"
	"io"

	"memento/chunk"
	"memento/index"
)

func BlobAD(t BlobType, id chunk.ID) []byte {
	ad := make([]byte, 0, 33)
	ad = append(ad, byte(t))
	return append(ad, id[:]...)
}

func PackName(id [32]byte) string { return FileName(DirData, id) }

// ReadBlob returns the verified plaintext of a blob of a space: it is
// decrypted, decompressed and its keyed hash compared with its ID, so the
// bytes returned are exactly the bytes that were backed up, or an error.
func (r *Repository) ReadBlob(ctx context.Context, space string, t BlobType, id chunk.ID) ([]byte, error) {
	locs, err := r.Locate(space, []chunk.ID{id})
	if err != nil {
		return nil, err
	}
	return r.ReadBlobAt(ctx, space, t, id, locs[id], nil)
}

// ReadBlobAt reads a blob whose location is known, into buf if it fits.
func (r *Repository) ReadBlobAt(ctx context.Context, space string, t BlobType, id chunk.ID, loc index.Location, buf []byte) ([]byte, error) {
	name := PackName(loc.Pack)
	rc, err := r.be.Open(ctx, name, int64(loc.Offset), int64(loc.Length))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) { // the pack is shorter than the index says: truncated
			return nil, &CorruptError{What: "pack " + ShortHex(loc.Pack), Detail: fmt.Sprintf("%s blob %s at offset %d+%d: pack truncated", t, id.Short(), loc.Offset, loc.Length), Err: err}
		}
		return nil, fmt.Errorf("pack %s: blob %s: %w", ShortHex(loc.Pack), id.Short(), err)
	}
	sealed := make([]byte, loc.Length)
	_, err = io.ReadFull(rc, sealed)
	rc.Close()
	if err != nil {
		return nil, &CorruptError{What: "pack " + ShortHex(loc.Pack), Detail: fmt.Sprintf("blob %s at offset %d: short read", id.Short(), loc.Offset), Err: err}
	}
	return r.OpenBlob(sealed, space, BlobType(loc.Type), id, loc, buf)
}

// OpenBlob authenticates, decompresses and verifies one sealed blob.
func (r *Repository) OpenBlob(sealed []byte, space string, t BlobType, id chunk.ID, loc index.Location, buf []byte) ([]byte, error) {
	raw, _, err := r.openSealed(sealed, space, t, id, loc, buf, openCaller, false)
	return raw, err
}

// LoadTree reads and validates a tree blob of a space.
func (r *Repository) LoadTree(ctx context.Context, space string, id chunk.ID) (*Tree, error) {
	b, err := r.ReadBlob(ctx, space, TreeBlob, id)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(b)
	if err != nil {
		return nil, &CorruptError{What: "tree " + id.Short(), Detail: "invalid", Err: err}
	}
	return t, nil
}

// ChunkSizes returns the plaintext size of each chunk, from the index, so a
// reader can compute file offsets without fetching data.
func (r *Repository) ChunkSizes(space string, ids []chunk.ID) ([]uint32, error) {
	locs, err := r.Locate(space, ids)
	if err != nil {
		return nil, err
	}
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = locs[id].RawLength
	}
	return out, nil
}
