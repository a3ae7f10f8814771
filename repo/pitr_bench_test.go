package repo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
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

// BenchmarkWALArchiveIncremental100MB archives 100 MB of WAL appended since
// the last run (default 64 MiB segments: one grown, one new, one open).
func BenchmarkWALArchiveIncremental100MB(b *testing.B) {
	tr := newTestRepo(b, InitOptions{})
	fx := newWALFixture(b, walreplay.DefaultMaxSegmentSize)
	fx.write(b, 20<<20)
	ar := tr.NewWALArchiver(nil)
	defer ar.Close()
	ctx := context.Background()
	if _, err := ar.ArchiveSpace(ctx, fx.dataDir, fx.space); err != nil {
		b.Fatal(err)
	}
	const n = 100 << 20
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fx.write(b, n)
		b.StartTimer()
		res, err := ar.ArchiveSpace(ctx, fx.dataDir, fx.space)
		if err != nil {
			b.Fatal(err)
		}
		if res.NewBytes < n {
			b.Fatalf("archived %d new bytes, want >= %d", res.NewBytes, n)
		}
		b.ReportMetric(float64(res.ReadBytes-res.NewBytes)/(1<<20), "re-cut-MiB")
	}
}

// TestWALArchiveResumesAtLastChunk checks the incremental-archive invariant:
// a new archiver (a restart) re-reads only the last archived chunk of a grown
// segment, and the chunks it records are exactly those of chunking the whole
// segment at once (so archive and backups share them).
func TestWALArchiveResumesAtLastChunk(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	fx := newWALFixture(t, 64<<20)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		fx.write(t, 3<<20)
		ar := tr.reopen(t).NewWALArchiver(nil) // a fresh process each time
		res, err := ar.ArchiveSpace(ctx, fx.dataDir, fx.space)
		ar.Close()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && res.ReadBytes-res.NewBytes > int64(4<<20) {
			t.Fatalf("run %d re-read %d bytes beyond the new ones", i, res.ReadBytes-res.NewBytes)
		}
	}
	arch, err := tr.reopen(t).LoadWALArchive(ctx, fx.space)
	if err != nil {
		t.Fatal(err)
	}
	segs := arch.Segments()
	if len(segs) != 1 {
		t.Fatalf("%d records, want 1", len(segs))
	}
	// Chunk the whole file in one go and compare.
	whole := newWALArchiveRun(t, tr, fx)
	if len(whole) != len(segs[0].Chunks) {
		t.Fatalf("incremental archive has %d chunks, whole-file chunking %d", len(segs[0].Chunks), len(whole))
	}
	for i := range whole {
		if whole[i] != segs[0].Chunks[i] {
			t.Fatalf("chunk %d differs: %v vs %v", i, segs[0].Chunks[i], whole[i])
		}
	}
	// A rewrite below the archived size is caught by a new archiver.
	p := filepath.Join(fx.dataDir, "spaces", fx.space, "wal", segs[0].Name)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0}, 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fx.write(t, 1<<20)
	ar := tr.reopen(t).NewWALArchiver(nil)
	defer ar.Close()
	if _, err := ar.ArchiveSpace(ctx, fx.dataDir, fx.space); err == nil {
		t.Fatal("a segment rewritten below its archived size was archived")
	}
}

// newWALArchiveRun chunks the fixture's only segment from offset 0.
func newWALArchiveRun(t *testing.T, tr *testRepo, fx *walFixture) []WALChunk {
	t.Helper()
	segs, err := walreplay.ListSegments(filepath.Join(fx.dataDir, "spaces", fx.space, "wal"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v %v", segs, err)
	}
	f, err := os.Open(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ar := tr.NewWALArchiver(nil)
	defer ar.Close()
	w := &walRun{a: ar, sa: &spaceArchiver{known: map[chunk.ID]struct{}{}}, key: tr.ChunkKey(fx.space), packer: tr.NewPacker(context.Background(), fx.space)}
	chunks, err := w.storeStream(context.Background(), f, "wal/"+segs[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	w.packer.Abort()
	return chunks
}
