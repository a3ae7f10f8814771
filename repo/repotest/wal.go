package repotest

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"memento/walreplay"
)

// WALFixture writes WAL entries of a space like a database does: 768-dim
// records, an id reused now and then (updates), a delete every 16 entries.
type WALFixture struct {
	// DataDir is the Engram data directory, Space the space written, in
	// DataDir/spaces/Space/wal.
	DataDir, Space string
	w              *walreplay.Writer
	rng            *rand.Rand
	seq            uint64
	ts             int64
	rec            walreplay.Record
	buf            []byte
}

// NewWALFixture starts the WAL of a space "bench" in a new data directory,
// in segments of segSize bytes.
func NewWALFixture(tb testing.TB, segSize int64) *WALFixture {
	tb.Helper()
	dd := tb.TempDir()
	space := "bench"
	w, err := walreplay.OpenWriter(filepath.Join(dd, "spaces", space, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, BufferSize: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	f := &WALFixture{DataDir: dd, Space: space, w: w, rng: rand.New(rand.NewPCG(1, 2)), ts: 1_800_000_000_000_000_000}
	f.rec.Embedding = make([]float32, 768)
	return f
}

// WALDir is the directory of the space's WAL segments.
func (f *WALFixture) WALDir() string {
	return filepath.Join(f.DataDir, "spaces", f.Space, "wal")
}

// Write appends entries until at least n more bytes of WAL exist, and
// syncs them.
func (f *WALFixture) Write(tb testing.TB, n int64) {
	tb.Helper()
	var written int64
	for written < n {
		f.seq++
		f.ts += int64(f.rng.IntN(200_000))
		e := walreplay.Entry{Seq: f.seq, TimestampNS: f.ts}
		id := fmt.Sprintf("mem-%d", f.rng.IntN(int(f.seq)))
		if f.seq%16 == 0 {
			e.Type = walreplay.MemoryDelete
			f.buf = walreplay.AppendDelete(f.buf[:0], id)
		} else {
			e.Type = walreplay.EpisodeStore
			f.rec.ID, f.rec.Confidence, f.rec.Content = id, f.rng.Float32(), "a memory of something that happened"
			for i := range f.rec.Embedding {
				f.rec.Embedding[i] = float32(f.rng.NormFloat64())
			}
			f.buf = walreplay.AppendRecord(f.buf[:0], &f.rec)
		}
		e.Payload = f.buf
		if err := f.w.Append(&e); err != nil {
			tb.Fatal(err)
		}
		written += e.Size()
	}
	if err := f.w.Sync(); err != nil {
		tb.Fatal(err)
	}
}

// Seq is the sequence number of the last entry written (0 before any).
func (f *WALFixture) Seq() uint64 { return f.seq }
