package restore

import (
	"context"
	"sync"

	"golang.org/x/sync/semaphore"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// restoreAhead bounds the stored bytes of one file's runs that are read and
// opened ahead of its writer. Several files are restored at once, so the
// whole restore holds a small multiple of it.
const restoreAhead = 12 << 20

// fetchItem is one step of a file's fetch plan: a run of chunks read with
// one request, or a chunk of zeros that needs no reading at all.
type fetchItem struct {
	run  *repo.BlobRun
	zero uint32 // > 0: a chunk of this many zero bytes
}

// fetchResult is a run's chunks, opened and verified, in run order.
type fetchResult struct {
	data []*[]byte // pooled; nil entries after an error
	err  error
}

// planFetch groups a file's chunks into runs of pack neighbours in file
// order. A chunk that occurs more than once in the file and whose ID is the
// keyed hash of zeros (a sparse region, an unused page) is not read at all:
// its ID proves its content as well as reading it would.
func (rs *restorer) planFetch(ids []chunk.ID, locs map[chunk.ID]index.Location) []fetchItem {
	seen := make(map[chunk.ID]int, len(ids))
	for _, id := range ids {
		seen[id]++
	}
	var items []fetchItem
	for _, id := range ids {
		loc := locs[id]
		if seen[id] > 1 && loc.RawLength > 0 && rs.zeroID(loc.RawLength) == id {
			items = append(items, fetchItem{zero: loc.RawLength})
			continue
		}
		if n := len(items); n > 0 && items[n-1].run != nil && items[n-1].run.Add(id, loc, repo.RunMaxBytes) {
			continue
		}
		items = append(items, fetchItem{run: repo.NewBlobRun(id, loc)})
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

// fetchChunks reads and verifies the chunks ids, a run of pack neighbours
// per request with several runs in flight (each opened on its own goroutine,
// so every core decrypts, decompresses and hashes), and calls fn with each
// chunk in order. data is only valid during the call; zero says it is a
// chunk of zeros that was never read.
func (rs *restorer) fetchChunks(ctx context.Context, ids []chunk.ID, locs map[chunk.ID]index.Location, fn func(data []byte, zero bool) error) error {
	items := rs.planFetch(ids, locs)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make([]chan fetchResult, len(items))
	for i := range results {
		if items[i].run != nil {
			results[i] = make(chan fetchResult, 1)
		}
	}
	ahead := semaphore.NewWeighted(restoreAhead)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, it := range items {
			if it.run == nil {
				continue
			}
			if ahead.Acquire(ctx, min(it.run.N, restoreAhead)) != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] <- rs.openRun(ctx, it.run)
			}()
		}
	}()
	for i, it := range items {
		if it.run == nil {
			if err := fn(zeros(int(it.zero)), true); err != nil {
				return err
			}
			continue
		}
		var res fetchResult
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		err := res.err
		for _, d := range res.data {
			if err == nil {
				err = fn(*d, false)
			}
			chunk.PutBuffer(d)
		}
		ahead.Release(min(it.run.N, restoreAhead))
		if err != nil {
			return err
		}
	}
	return nil
}

// openRun reads a run and opens each of its blobs. A blob that cannot be
// read or does not verify is fetched from another pack holding a copy of
// it, when the index knows one.
func (rs *restorer) openRun(ctx context.Context, run *repo.BlobRun) fetchResult {
	res := fetchResult{data: make([]*[]byte, len(run.Blobs))}
	buf, rerr := run.Read(ctx, rs.r.Backend())
	defer func() {
		if buf != nil {
			chunk.PutBuffer(buf)
		}
	}()
	for k, b := range run.Blobs {
		err := rerr
		if err == nil {
			res.data[k], err = rs.r.OpenBlobPooled(run.Sealed(*buf, k), rs.sn.Space, repo.DataBlob, b.ID, b.Loc)
		}
		if err != nil && ctx.Err() == nil {
			res.data[k], err = rs.otherCopy(ctx, b.ID, b.Loc, err)
		}
		if err != nil {
			for _, d := range res.data[:k] {
				chunk.PutBuffer(d)
			}
			res.data, res.err = nil, err
			return res
		}
	}
	return res
}

// otherCopy reads blob id from a pack other than the damaged one at bad, if
// the index knows another; else it returns the original error.
func (rs *restorer) otherCopy(ctx context.Context, id chunk.ID, bad index.Location, cause error) (*[]byte, error) {
	alts, err := rs.r.Index().LookupAll(repo.StorageSpace(rs.sn.Space), []chunk.ID{id})
	if err != nil {
		return nil, cause
	}
	for _, l := range alts[id] {
		if l.Pack == bad.Pack {
			continue
		}
		d, err := rs.r.ReadBlobAt(ctx, rs.sn.Space, repo.DataBlob, id, l, nil)
		if err != nil {
			continue
		}
		rs.r.Logger().Warn("restore: damaged blob replaced by another copy",
			"blob", id.Short(), "pack", repo.ShortHex(bad.Pack), "copy", repo.ShortHex(l.Pack), "err", cause)
		return &d, nil
	}
	return nil, cause
}
