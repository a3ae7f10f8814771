package restore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// blobServer is a Repository that serves data blobs from a map through
// StreamBlobs (the one read path) and records what it was asked for; any
// method a fetch does not need panics (nil embedded interface).
type blobServer struct {
	Repository
	key   chunk.Key
	blobs map[chunk.ID][]byte
	asked []chunk.ID
}

func (f *blobServer) ChunkKey(space string) chunk.Key { return f.key }

func (f *blobServer) StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error {
	if t != repo.DataBlob || !opts.Fallback {
		return fmt.Errorf("unexpected stream request %v %+v", t, opts)
	}
	f.asked = append(f.asked, ids...)
	for i, id := range ids {
		b := repo.StreamBlob{Index: i, ID: id, Data: f.blobs[id]}
		if b.Data == nil {
			b.Err = fmt.Errorf("blob %s not stored", id.Short())
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// TestFetchOrderedWithoutRepository fetches a file's chunks from a fake
// Repository: the chunks come out in file order, and a chunk of zeros that
// occurs twice is never read (its ID proves its content).
func TestFetchOrderedWithoutRepository(t *testing.T) {
	key := chunk.DeriveKey([32]byte{1}, "s1")
	a, b, z := []byte("first chunk"), []byte("second chunk"), make([]byte, 4096)
	ida, idb, idz := key.Sum(a), key.Sum(b), key.Sum(z)
	f := &blobServer{key: key, blobs: map[chunk.ID][]byte{ida: a, idb: b}}
	ids := []chunk.ID{ida, idz, idb, idz}
	locs := map[chunk.ID]index.Location{
		ida: {RawLength: uint32(len(a))}, idb: {RawLength: uint32(len(b))}, idz: {RawLength: uint32(len(z))},
	}
	rs := &restorer{r: f, sn: &repo.Snapshot{Manifest: repo.Manifest{Space: "s1"}}, opts: RestoreOptions{Progress: &repo.Progress{}, Workers: 1}}
	var got []byte
	if err := rs.fetchOrdered(context.Background(), ids, locs, func(data []byte) error {
		got = append(got, data...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(a, z, b, z)
	if !bytes.Equal(got, want) {
		t.Fatalf("fetched %d bytes, want %d in file order", len(got), len(want))
	}
	if !slices.Equal(f.asked, []chunk.ID{ida, idb}) {
		t.Fatalf("StreamBlobs asked for %d chunks %v, want the 2 non-zero ones", len(f.asked), f.asked)
	}
}
