package backup

import (
	"context"

	"memento/chunk"
	"memento/repo"
)

// Delta blobs (repository format 4): Engram's warm page file is cut into
// fixed 32 KiB chunks and rewritten in place in 4 KiB pages, so a day that
// rewrites one page of a chunk stored the whole chunk again (41 % of a
// day's stored bytes, docs/benchmarks.md). A backup that has the parent
// snapshot's content of such a file stores a new chunk that replaced one of
// the same length as a delta (repo/delta.go): the base's ID and the pages
// that differ, when at most half of the pages do and the delta is smaller
// than the whole chunk stored, or at most a quarter of its plaintext
// (deltaSure: then it is taken without compressing the chunk to compare,
// and a chunk compressing better than 4:1 may be stored as a delta a
// little larger than its whole form). Such a chunk reaches storeDelta
// uncompressed (chunk.SplitFileLazy) and is compressed only when it is
// stored whole or its frame is above that quarter.

// deltaRepo is what a backup needs of a repository to store deltas (a
// *repo.Repository has it).
type deltaRepo interface {
	DeltaBase(ctx context.Context, space string, prev chunk.ID, n int) (chunk.ID, []byte, error)
}

// maxDeltaChunk bounds the fixed chunk size of the files whose chunks may
// be stored as deltas: the warm page file's 32 KiB. The other file cut at
// fixed offsets, the WAL (1 MiB), only grows at the end: its chunks never
// change in place.
const maxDeltaChunk = 256 << 10

// deltaPrev returns the parent's content list of the file at relPath when
// its new chunks may be stored as deltas of the parent's: a repository of
// format 4, a file cut at fixed offsets, a parent that is a file with
// content. Otherwise nil, and the file is stored as without deltas.
func (a *archiver) deltaPrev(relPath string, pn *repo.Node) []chunk.ID {
	if a.deltas == nil || a.dryRun || pn == nil || pn.Type != repo.NodeFile || len(pn.Content) == 0 {
		return nil
	}
	if p := a.params.For(relPath); p.Min != p.Max || p.Min > maxDeltaChunk {
		return nil
	}
	return pn.Content
}

// storeDelta is storeChunk for a file with a parent's content list prev
// (deltaPrev): a chunk the repository lacks that replaced a chunk of the
// same length at its index is stored as a delta when that pays.
func (a *archiver) storeDelta(ctx context.Context, c *chunk.Chunk, prev []chunk.ID, relPath string) error {
	if _, ok := a.known[c.ID]; ok {
		return nil
	}
	if !a.claim(c.ID) {
		return nil
	}
	if deltaCandidate(prev, c.Index, c.ID) {
		if err := a.packer.Err(); err != nil {
			return err // a pack write failed: as addChunk, before the delta's work
		}
		if frame := a.makeDelta(ctx, c, prev[c.Index], relPath); frame != nil {
			a.newChunks.Add(1)
			a.newBytes.Add(uint64(len(c.Raw)))
			a.prog.NewBytes.Add(int64(len(c.Raw)))
			a.deltaChunks.Add(1)
			return a.packer.Add(repo.DataBlob, c.ID, repo.FlagDelta, len(c.Raw), frame)
		}
	}
	c.Compress() // a candidate came uncompressed (SplitFileLazy)
	return a.addChunk(c)
}

// deltaCandidate reports whether the chunk id at index of a file whose
// parent's content is prev may be stored as a delta: it replaced another
// chunk at its index. The pipeline hands such a chunk to storeDelta
// uncompressed, which compresses it only when it stores it whole.
func deltaCandidate(prev []chunk.ID, index int, id chunk.ID) bool {
	return index < len(prev) && prev[index] != id
}

// deltaSure is the largest frame, relative to its chunk's length, that
// makeDelta takes without compressing the chunk whole to compare: a frame
// of at most a quarter of the chunk's bytes is smaller than the chunk's
// stored form unless the whole chunk compresses better than 4:1 while its
// changed pages alone do not. The warm page file's chunks store at 0.37 to
// 0.85 of their length (docs/benchmarks.md), and a day's delta holds one or
// two of a chunk's eight pages.
const deltaSure = 4

// makeDelta returns the delta frame of c against the base of prev, or nil
// when there is none to make (prev unreadable or of another length, the
// chunk equal to its base) or it does not pay: more than half of the pages
// changed, or a frame not smaller than the chunk's stored form. A frame of
// at most 1/deltaSure of the chunk is taken without compressing the chunk
// (c may come uncompressed: see deltaCandidate); a larger one is compared
// with the chunk's stored form.
func (a *archiver) makeDelta(ctx context.Context, c *chunk.Chunk, prev chunk.ID, relPath string) []byte {
	base, plain, err := a.deltas.DeltaBase(ctx, a.space, prev, len(c.Raw))
	if err != nil {
		if ctx.Err() == nil {
			a.r.Logger().Debug("backup: no delta, chunk stored whole", "file", relPath, "chunk", c.Index, "prev", prev.Short(), "err", err)
		}
		return nil
	}
	if base == c.ID {
		return nil
	}
	pages := chunk.DiffPages(plain, c.Raw)
	total := (len(c.Raw) + chunk.DeltaPageSize - 1) / chunk.DeltaPageSize
	if len(pages) == 0 || 2*len(pages) > total {
		return nil
	}
	frame := chunk.AppendDelta(nil, base, c.Raw, pages, func(p []byte) ([]byte, bool) {
		return a.pipe.CompressFile(nil, p, relPath)
	})
	if len(frame)*deltaSure <= len(c.Raw) {
		return frame
	}
	c.Compress()
	if len(frame) >= len(c.Stored) {
		return nil
	}
	return frame
}
