package restore

import (
	"context"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// restoreAhead bounds the memory one file's runs read and opened ahead of
// its writer hold: their stored bytes and their blobs' plaintext
// (StreamOptions.AheadHeld). Several files are restored at once, so the
// whole restore holds a small multiple of it.
// 16 MiB is a run of 4 MiB of stored, compressed data and its plaintext, or
// two runs of incompressible data. Counting the stored bytes alone (12 MiB,
// before issue 18's session 7) let a file hold some 30 MiB of plaintext
// besides; with two spaces of two files each restored at once that was the
// whole 200 MiB heap limit, and the first touches of fresh heap pages (page
// faults) were 15-18 % of the restore's CPU samples. Held memory bounded,
// a data dir's restore took fewer page faults and less CPU at the same
// wall time (docs/benchmarks.md, "Issue 18, session 7").
const restoreAhead = 16 << 20

// A restore reads its runs around the page cache (StreamOptions.AroundCache:
// O_DIRECT for runs of directio.MinReadSize and more on a local repository).
// Copying every pack out of the page cache, and the kernel filling and
// reclaiming it, cost 0.3-0.5 s of system time per GiB restored (issue 18,
// session 8: 1.3-1.8 s down to 0.8-1.5 s of sys on 1 GiB data dirs), and the
// packs are not read again: the run's blobs are written out and done. What
// the kernel's readahead did is done by the read-ahead of runs (restoreAhead):
// the data dirs' runs are small (a median of some 300 KB: files backed up
// at once share packs), so a file has a dozen runs in flight at once.

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

// zeroChunk is where zeros takes chunks of zeros from: never written, so
// its pages are the kernel's shared zero page when read, not the process's
// memory. A sparse image of 4 GiB is some 8,000 chunks of 512 KiB of zeros;
// making each (as zeros did) cost its restore 3.5 GiB of allocation,
// clearing and returning memory, a fifth of its CPU (docs/benchmarks.md,
// "Issue 18, session 22").
var zeroChunk [chunk.MaxChunkSize]byte

// zeros returns n zero bytes, not to be written to. Their capacity is n: an
// append to them copies, it cannot write into zeroChunk.
func zeros(n int) []byte {
	if n <= len(zeroChunk) {
		return zeroChunk[:n:n]
	}
	return make([]byte, n)
}

// fetchChunksAhead reads and verifies the chunks ids through
// repo.StreamBlobs, a run of pack neighbours per request with several runs
// in flight, at most ahead bytes of them (each opened on its own goroutine,
// so every core decrypts, decompresses and hashes; 0: each run read when fn
// is done with the previous one, on the calling goroutine) and a damaged
// blob read from another pack holding a copy, when the index knows one,
// and calls fn with each chunk in order. data is only valid during the
// call; zero says it is a chunk of zeros that was never read. With
// endToEnd the chunks' IDs are not checked (repo.StreamOptions.EndToEnd):
// the caller checks the file's BLAKE3.
func (rs *restorer) fetchChunksAhead(ctx context.Context, ids []chunk.ID, locs map[chunk.ID]index.Location, ahead int64, endToEnd bool, fn func(data []byte, zero bool) error) error {
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
	opts := repo.StreamOptions{Ahead: ahead, AheadHeld: true, AroundCache: true, Buffer: repo.BufferBorrowed, Fallback: true, Who: "restore", Locs: readLocs}
	mem := rs.mem
	if ahead == 0 {
		mem = nil // a small file: one run of a few KiB, whose buffers the pools reuse at once
	}
	if mem != nil {
		// The runs and the plaintexts in the restore's own memory
		// (slabmem), each plaintext given back once fn is done with it.
		opts.Buffer, opts.Mem = repo.BufferFresh, mem
	}
	if endToEnd {
		opts.EndToEnd = func(chunk.ID) bool { return true }
	}
	err := rs.r.StreamBlobs(ctx, rs.sn.Space, repo.DataBlob, read, opts, func(b repo.StreamBlob) error {
		defer mem.Put(b.Data) // on every way out (BufferFresh: the stream does not free it)
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
