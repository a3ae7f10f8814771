package chunk

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestEncoderHistoryBounded: an encoder that compressed a chunk of the
// largest size keeps at most its window (8 MiB) and a block of history, not
// twice the window, which klauspost's encoder keeps unless told to lower its
// memory. Three such encoders lived through a first backup: 48 MiB of a
// 200 MiB heap limit as history, the heap at the limit and a garbage
// collection every 70 ms on a data dir of 8 spaces (docs/benchmarks.md,
// "Issue 18, session 20: the first backup of data dirs it was not tuned for").
func TestEncoderHistoryBounded(t *testing.T) {
	in := genText(MaxChunkSize, 11)
	for _, k := range []encKey{{l: LevelFastest}, {l: LevelBalanced}, {l: LevelFastest, rawLits: true}} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e := newEncoder(k)
		_ = e.EncodeAll(in, nil)
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept := int64(after.HeapAlloc) - int64(before.HeapAlloc)
		runtime.KeepAlive(e)
		if limit := int64(MaxChunkSize + 4<<20); kept > limit {
			t.Errorf("%+v: the encoder keeps %d bytes after an 8 MiB input, want at most %d", k, kept, limit)
		}
	}
}

// TestEncoderLowMemSameFrames: the lower-memory encoder writes the frames of
// the default one for inputs up to the largest chunk (its history never has
// to be moved down within a frame), so the stored forms do not change.
// Checked on 7.7 GB of real data dirs' chunks too (the section above).
func TestEncoderLowMemSameFrames(t *testing.T) {
	inputs := [][]byte{{}, {7}, genText(1000, 1), genText(128<<10, 2), genText(128<<10+1, 3), genFloats(1<<20, 4),
		genBinary(3 << 20), genText(MaxChunkSize, 5), genFloats(MaxChunkSize, 6)}
	for _, k := range []encKey{{l: LevelFastest}, {l: LevelBalanced}, {l: LevelFastest, rawLits: true}} {
		low := newEncoder(k)
		def, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(k.l.zstd()), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithLowerEncoderMem(false),
			zstd.WithAllLitEntropyCompression(!k.rawLits), zstd.WithNoEntropyCompression(k.rawLits))
		if err != nil {
			t.Fatal(err)
		}
		for i, in := range inputs {
			if a, b := low.EncodeAll(in, nil), def.EncodeAll(in, nil); !bytes.Equal(a, b) {
				t.Errorf("%+v: input %d (%d bytes): frame of %d bytes, the default encoder's %d", k, i, len(in), len(a), len(b))
			}
		}
	}
}
