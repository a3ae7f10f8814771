package fusefs

import (
	"memento/chunk"
)

// readaheadBytes is the least a sequential reader has fetched ahead of it.
const readaheadBytes = 8 << 20

// prefetchJob asks a worker to load one chunk into the cache.
type prefetchJob struct {
	space string
	id    chunk.ID
}

// readahead hands the chunks after chunk i to the prefetch workers when the
// file is being read sequentially (this read is in the same chunk as the
// last one or the next), so that fetching, decrypting, decompressing and
// verifying them runs in parallel with the reader instead of in its path.
// The kernel's own readahead is only 128 KiB, far less than a chunk.
func (h *fileHandle) readahead(i int) {
	window := h.n.f.opts.Readahead
	if window <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	seq := i == h.last || i == h.last+1
	h.last = i
	if !seq {
		h.ahead = i + 1
		return
	}
	from := max(h.ahead, i+1)
	to := min(i+window, len(h.offs)-2)
	// The window is in chunks, but chunks range from 16 KiB (the warm page
	// file) to 8 MiB: keep at least readaheadBytes in flight whatever their size.
	for to < len(h.offs)-2 && h.offs[to+1]-h.offs[i+1] < readaheadBytes {
		to++
	}
	for j := from; j <= to; j++ {
		id := h.n.node.Content[j]
		if h.n.f.chunks.contains(id) {
			h.ahead = j + 1
			continue
		}
		select {
		case h.n.f.prefetchQ <- prefetchJob{space: h.n.snap.space, id: id}:
			h.ahead = j + 1
		default:
			return // the workers are saturated; try again on the next read
		}
	}
}

func (f *FS) prefetchWorker() {
	defer f.workers.Done()
	for {
		select {
		case <-f.ctx.Done():
			return
		case j := <-f.prefetchQ:
			if f.chunks.contains(j.id) {
				continue
			}
			// A failure is not reported here: the read that needs the chunk
			// fetches it again and reports it with the file's name.
			if _, err := f.readChunk(f.ctx, j.space, j.id); err != nil {
				f.log.Debug("readahead failed", "chunk", j.id.String(), "err", err)
			}
		}
	}
}
