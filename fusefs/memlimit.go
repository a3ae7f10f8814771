package fusefs

import (
	"log/slog"
	"runtime/debug"
)

// memoryHeadroom is what a mount holds besides its caches: the runs being
// fetched and opened by the readahead workers (a few MiB each), go-fuse's
// request buffers (1 MiB each) and the index.
const memoryHeadroom = 128 << 20

// raiseMemoryLimit makes room for the caches under the process's soft
// memory limit (runtime/debug.SetMemoryLimit; memento sets a small one for
// backups, GOMEMLIMIT sets one too). The caches are bounded by CacheSize and
// TreeCacheSize; with a limit below what they hold once full, the GC runs
// back to back (hundreds of cycles for a 1 GiB read) and a mounted file reads
// at a fraction of its speed. The limit is only ever raised, to the caches'
// bound plus the chunk memory's slab (chunkMem; the cache counts the blocks
// it holds, not the free ones) plus memoryHeadroom.
func raiseMemoryLimit(o Options, log *slog.Logger) {
	need := o.CacheSize + o.TreeCacheSize + memoryHeadroom + chunkMemSize(o)
	if cur := debug.SetMemoryLimit(-1); cur < need {
		debug.SetMemoryLimit(need)
		log.Debug("raised the Go memory limit to hold the mount's caches", "from", cur, "to", need)
	}
}
