package restore

import (
	"context"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// restoreAhead bounds the stored bytes of one file's runs that are read and
// opened ahead of its writer. Several files are restored at once, so the
// whole restore holds a small multiple of it.
const restoreAhead = 12 << 20

// fetchItem is one step of a file's fetch plan: a chunk read from the
// repository, or a chunk of zeros that needs no reading at all.
type fetchItem struct {
	id   chunk.ID
	zero uint32 // > 0: a chunk of this many zero bytes, not read
}

// planFetch lists a file's chunks in file order and says which need no
// reading: a chunk that occurs more than once in the file and whose ID is
// the keyed hash of zeros (a sparse region, an unused page) is not read at
// all, its ID proves its content as well as reading it would. The others
// are read in runs of pack neighbours by repo.StreamBlobs.
func (rs *restorer) planFetch(ids []chunk.ID, locs map[chunk.ID]index.Location) []fetchItem {
	seen := make(map[chunk.ID]int, len(ids))
	for _, id := range ids {
		seen[id]++
	}
	items := make([]fetchItem, len(ids))
	for i, id := range ids {
		items[i].id = id
		if loc := locs[id]; seen[id] > 1 && loc.RawLength > 0 && rs.zeroID(loc.RawLength) == id {
			items[i].zero = loc.RawLength
		}
	}
	return items
}

// zeroID is the ID of a chunk of n zero bytes in the snapshot's space.
func (rs *restorer) zeroID(n uint32) chunk.ID {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if id, ok := rs.zeroIDs[n]; ok {
		return id
	}
	if rs.zeroIDs == nil {
		rs.zeroIDs = map[uint32]chunk.ID{}
	}
	id := rs.r.ChunkKey(rs.sn.Space).Sum(zeros(int(n)))
	rs.zeroIDs[n] = id
	return id
}

var zeroPage [64 << 10]byte

// zeros returns n zero bytes, not to be written to.
func zeros(n int) []byte {
	if n <= len(zeroPage) {
		return zeroPage[:n]
	}
	return make([]byte, n)
}

// fetchChunks reads and verifies the chunks ids through repo.StreamBlobs, a
// run of pack neighbours per request with several runs in flight (each
// opened on its own goroutine, so every core decrypts, decompresses and
// hashes) and a damaged blob read from another pack holding a copy, when
// the index knows one, and calls fn with each chunk in order. data is only
// valid during the call; zero says it is a chunk of zeros that was never
// read.
func (rs *restorer) fetchChunks(ctx context.Context, ids []chunk.ID, locs map[chunk.ID]index.Location, fn func(data []byte, zero bool) error) error {
	items := rs.planFetch(ids, locs)
	read := make([]chunk.ID, 0, len(items))           // the chunks read, in file order
	readLocs := make([]index.Location, 0, len(items)) // where (the index was asked already)
	at := make([]int, 0, len(items))                  // at[k]: the item read[k] is
	for i, it := range items {
		if it.zero == 0 {
			loc, ok := locs[it.id]
			if !ok {
				readLocs = nil // StreamBlobs asks the index, and says what it lacks
			} else if readLocs != nil {
				readLocs = append(readLocs, loc)
			}
			read = append(read, it.id)
			at = append(at, i)
		}
	}
	next := 0 // the first item not given to fn yet
	zerosUpTo := func(end int) error {
		for ; next < end; next++ {
			if err := fn(zeros(int(items[next].zero)), true); err != nil {
				return err
			}
		}
		return nil
	}
	opts := repo.StreamOptions{Ahead: restoreAhead, Buffer: repo.BufferBorrowed, Fallback: true, Who: "restore", Locs: readLocs}
	err := rs.r.StreamBlobs(ctx, rs.sn.Space, repo.DataBlob, read, opts, func(b repo.StreamBlob) error {
		// Blobs arrive in the order given: the zeros before b are due.
		if err := zerosUpTo(at[b.Index]); err != nil {
			return err
		}
		if b.Err != nil {
			return &blobError{id: b.ID, loc: b.Loc, err: b.Err}
		}
		next++
		return fn(b.Data, false)
	})
	if err != nil {
		return err
	}
	return zerosUpTo(len(items))
}
