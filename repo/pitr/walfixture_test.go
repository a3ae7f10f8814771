package pitr_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"memento/walreplay"
)

// walFixture writes WAL entries of a space like a database does: 768-dim
// records, an id reused now and then (updates), a delete every 16 entries.
type walFixture struct {
	dataDir, space string
	w              *walreplay.Writer
	rng            *rand.Rand
	seq            uint64
	ts             int64
	rec            walreplay.Record
	buf            []byte
}

func newWALFixture(tb testing.TB, segSize int64) *walFixture {
	tb.Helper()
	dd := tb.TempDir()
	space := "bench"
	w, err := walreplay.OpenWriter(filepath.Join(dd, "spaces", space, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, BufferSize: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	f := &walFixture{dataDir: dd, space: space, w: w, rng: rand.New(rand.NewPCG(1, 2)), ts: 1_800_000_000_000_000_000}
	f.rec.Embedding = make([]float32, 768)
	return f
}

// write appends entries until at least n more bytes of WAL exist.
func (f *walFixture) write(tb testing.TB, n int64) {
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
