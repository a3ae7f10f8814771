package fusefs

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// The mount raises a soft memory limit that is too small for its caches
// and its chunk memory (the GC would run back to back), and never lowers
// one.
func TestRaiseMemoryLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	o := Options{CacheSize: 256 << 20}
	o.setDefaults()
	need := int64(256<<20 + DefaultTreeCacheSize + memoryHeadroom + defaultChunkMem)
	for _, tt := range []struct{ before, want int64 }{
		{200 << 20, need},              // memento's backup limit: raised
		{need - 1, need},               // just short: raised
		{need + 1, need + 1},           // enough: kept
		{math.MaxInt64, math.MaxInt64}, // no limit: kept
	} {
		debug.SetMemoryLimit(tt.before)
		raiseMemoryLimit(o, slog.Default())
		if got := debug.SetMemoryLimit(-1); got != tt.want {
			t.Errorf("limit %d: after the mount %d, want %d", tt.before, got, tt.want)
		}
	}
}
