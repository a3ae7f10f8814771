package fusefs

import (
	"memento/chunk"
	"memento/repo/lru"
)

const (
	// readaheadBytes is the least a sequential reader has fetched ahead of
	// it, whatever the chunk size (32 KiB in the warm page file, up to 8 MiB
	// elsewhere): enough to keep every prefetch worker busy while the
	// kernel's own readahead (KernelReadahead) is being answered.
	readaheadBytes = 16 << 20
	// batchBytes is what one prefetch job fetches: 32 chunks of a page
	// file, read with one request per pack run, so that the per-chunk cost
	// is the decrypting, decompressing and hashing only.
	batchBytes = 1 << 20
	// batchChunks bounds the chunks of one job.
	batchChunks = 128
)

// prefetchJob asks a worker to load chunks first.. of the file open as h
// into the cache.
type prefetchJob struct {
	space string
	ids   []chunk.ID
	h     *fileHandle
	first int
}

// stale returns how many of the job's chunks its reader has already passed
// and dropped: a job still queued when the reader overtook it must not load
// them again into the cache behind the reader, where nothing drops them.
func (j prefetchJob) stale() int {
	j.h.mu.Lock()
	defer j.h.mu.Unlock()
	return min(max(j.h.behind-j.first, 0), len(j.ids))
}

// readahead hands the chunks after chunks i..j (those of the current read)
// to the prefetch workers when the file is being read sequentially (this
// read starts near where the furthest read so far ended), so that
// fetching, decrypting, decompressing and verifying them runs in parallel
// on every core instead of in the reader's path. The kernel keeps up to two
// readahead windows of reads in flight (Options.readaheadSpan), which arrive
// in any order: a read within two windows of the furthest one so far is
// still sequential, and a chunk two windows behind it will not be asked for
// again, so it leaves the cache. The kernel sends several
// reads of one file at once: the window is taken under the handle's lock,
// the jobs are queued outside it, and the cache is not consulted here (a
// worker skips what is cached or loading when it claims a job's chunks).
func (h *fileHandle) readahead(i, j int) {
	window := h.n.f.opts.Readahead
	if window <= 0 {
		return
	}
	lastChunk := len(h.offs) - 2
	span := 2 * h.n.f.opts.readaheadSpan()
	h.mu.Lock()
	// A read that starts within span of where the furthest read so far
	// ended is sequential. Counting only exact successors stopped the
	// drop-behind (and restarted the prefetch) whenever two reads swapped.
	seq := i == 0 && h.last < 0
	if h.last >= 0 {
		end := h.offs[h.last+1]
		seq = h.offs[i] <= end+span && h.offs[i+1] >= end-span
	}
	if !seq {
		// A new start: prefetch and drop-behind begin again from here
		// (behind must not stay past i, or the jobs for what follows would
		// all look stale).
		h.last, h.ahead, h.behind = j, j+1, i
		h.mu.Unlock()
		return
	}
	h.last = max(h.last, j)
	// Drop behind: chunks a sequential reader has passed by more than span
	// are in the kernel's page cache (FOPEN_KEEP_CACHE) and
	// will not be asked for again; keeping them would grow the heap to the
	// whole CacheSize, and every chunk decoded into fresh memory costs page
	// faults, where a small heap recycles what the GC freed. This runs on
	// every sequential read, also once the prefetch has reached the end of
	// the file.
	from0 := h.behind
	for h.behind < i && h.offs[h.behind+1] <= h.offs[i]-span {
		h.behind++
	}
	behind := h.behind
	from := max(h.ahead, j+1)
	to := min(j+window, lastChunk)
	for to < lastChunk && h.offs[to+1]-h.offs[j+1] < readaheadBytes {
		to++
	}
	h.ahead = max(h.ahead, to+1)
	h.mu.Unlock()

	f, ids := h.n.f, h.n.node.Content
	if behind > from0 {
		f.chunks.Forget(ids[from0:behind])
	}
	for from <= to {
		// A job is up to batchBytes of consecutive chunks.
		end := from + 1
		for end <= to && end-from < batchChunks && h.offs[end+1]-h.offs[from] <= batchBytes {
			end++
		}
		select {
		case f.prefetchQ <- prefetchJob{space: h.n.snap.space, ids: ids[from:end], h: h, first: from}:
			from = end
		default:
			// The workers are saturated: leave the rest to the reads that
			// need it (they fetch what they lack in one batch, in parallel
			// with the workers).
			return
		}
	}
}

// prefetchWorker loads the chunks of jobs that nobody has loaded or is
// loading yet. A failure is not reported here: the read that needs the
// chunk fetches it again and reports it with the file's name.
func (f *FS) prefetchWorker() {
	defer f.workers.Done()
	var entries []*chunkEntry
	for {
		select {
		case <-f.ctx.Done():
			return
		case j := <-f.prefetchQ:
			entries = entries[:0]
			f.chunks.ClaimAll(j.ids[j.stale():], false, func(_ int, e *chunkEntry, st lru.State) {
				if st == lru.Own {
					entries = append(entries, e)
				}
			})
			if len(entries) > 0 {
				f.loadChunks(j.space, entries)
			}
		}
	}
}
