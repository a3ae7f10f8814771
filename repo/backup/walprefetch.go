package backup

import (
	"context"
	"os"

	"memento/walreplay"
)

// walPrefetchMax bounds the WAL bytes one space backup asks the kernel to
// read ahead (prefetchWAL): all of a 1 GiB data dir's WAL (~180 MB a
// space), the first quarter GiB of a larger one. The pages go to the page
// cache, not to the process: the bound is there so that a small machine
// does not evict them again before the replay reaches them.
const walPrefetchMax = 256 << 20

// walPrefetchChunk is the size of one read-ahead request: the kernel cuts a
// request to its read-ahead window (read_ahead_kb) or the device's largest
// I/O, whichever is larger, so requests larger than either would leave gaps.
const walPrefetchChunk = 1 << 20

// prefetchWAL asks the kernel to read segs into the page cache in the
// background, oldest first, up to budget bytes, in requests of at most
// walPrefetchChunk bytes made through advise (willNeed; it reports whether
// to go on), and closes the returned channel when every request is made (the
// reads themselves may still run).
//
// Why: after a day of activity a space backup re-reads only the files that
// changed (the newest WAL segment, the warm file, a new cold segment), but
// the state replay that proves the snapshot (EngramRecorder.replay) reads
// the whole WAL, and it starts only once the tiers are read and takes turns
// with the other spaces' replays. With a cold cache the sealed segments
// were then read at one stream's speed at the end of the backup while the
// cores waited (issue 18: half the wall time of a 1 GiB data dir's backup
// after a day). Requested when the tiers' reading starts, they are read
// beside them, and the replay finds them in the cache.
func prefetchWAL(ctx context.Context, segs []walreplay.SegmentInfo, budget int64, advise func(f *os.File, off, n int64) bool) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, s := range segs {
			if budget <= 0 || ctx.Err() != nil {
				return
			}
			n := min(s.Size, budget)
			budget -= n
			if !adviseFile(ctx, s.Path, n, advise) {
				return
			}
		}
	}()
	return done
}

// adviseFile makes prefetchWAL's requests for the first n bytes of the file
// at path. It reports false when advise refused one (no read-ahead here: the
// rest is not asked for either); a file that cannot be opened is skipped
// (the replay reports it).
func adviseFile(ctx context.Context, path string, n int64, advise func(f *os.File, off, n int64) bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	for off := int64(0); off < n && ctx.Err() == nil; off += walPrefetchChunk {
		if !advise(f, off, min(walPrefetchChunk, n-off)) {
			return false
		}
	}
	return true
}
