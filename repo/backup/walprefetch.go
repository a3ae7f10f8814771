package backup

import (
	"context"
	"os"

	"memento/walreplay"
)

// walPrefetchMax bounds the WAL bytes one space backup asks the kernel to
// read ahead for its replay (prefetchWAL): all of a 1 GiB data dir's WAL
// (~180 MB a space), the first quarter GiB of a larger one, past which the
// replay's own read-ahead goes on as before. The pages go to the page cache,
// not to the process; the bound keeps a small machine from evicting them
// again before the replay reaches them.
const walPrefetchMax = 256 << 20

// walPrefetchChunk is the size of one read-ahead request.
const walPrefetchChunk = 1 << 20

// prefetchWAL asks the kernel to read segs into the page cache in the
// background, oldest first, up to budget bytes, in requests of at most
// walPrefetchChunk bytes made through advise (readAhead; it reports
// whether to go on), and closes the returned channel when every request is made (the
// pages may still be on their way when advise only asks for them).
//
// Why: after a day of activity a space backup re-reads only the files that
// changed (the newest WAL segment, the warm file, a new cold segment), but
// the state replay that proves the snapshot (EngramRecorder.replay) reads
// the whole WAL: 130 MB of sealed segments per space of a 1 GiB wal-heavy
// data dir, nearly as much again as the backup itself reads. The replay
// reads through a memory map, one page fault's read-around at a time, and
// the spaces' replays take turns (ConcurrentReplays), so with a cold cache
// those segments were read at one stream's speed at the end of the backup
// while the cores waited. Read as soon as a space's replay is requested,
// a space waiting for its turn reads its WAL meanwhile and its turn finds it
// in the cache. (Reading it earlier, when the tiers' reading starts, leaves
// the pages exposed to eviction for the whole backup.) On a 1 GiB wal-heavy
// data dir after a day: median wall 3.18 -> 2.66 s at the same CPU (2.65 s),
// the same bytes read from disk (scripts/bench/ab-day.sh, 4 rounds).
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

// readAhead returns prefetchWAL's request function: each request is read
// into a buffer of walPrefetchChunk bytes and dropped, so the pages land in
// the page cache at the pace of one more sequential reader, sharing the disk
// with the other spaces' reads of their tiers. (POSIX_FADV_WILLNEED would
// cost no copy, but queues the whole WAL at once ahead of those reads.) A
// request that cannot be read ends the prefetch; the replay reports the
// error.
func readAhead() func(f *os.File, off, n int64) bool {
	buf := make([]byte, walPrefetchChunk)
	return func(f *os.File, off, n int64) bool {
		_, err := f.ReadAt(buf[:n], off)
		return err == nil
	}
}
