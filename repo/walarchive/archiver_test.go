package walarchive

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// BenchmarkWALArchiveIncremental100MB archives 100 MB of WAL appended since
// the last run (default 64 MiB segments: one grown, one new, one open).
func BenchmarkWALArchiveIncremental100MB(b *testing.B) {
	tr := repotest.New(b, repo.InitOptions{})
	fx := repotest.NewWALFixture(b, walreplay.DefaultMaxSegmentSize)
	fx.Write(b, 20<<20)
	ar := NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	ctx := context.Background()
	if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil {
		b.Fatal(err)
	}
	const n = 100 << 20
	b.SetBytes(n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fx.Write(b, n)
		b.StartTimer()
		res, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space)
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
	tr := repotest.New(t, repo.InitOptions{})
	fx := repotest.NewWALFixture(t, 64<<20)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		fx.Write(t, 3<<20)
		ar := NewWALArchiver(tr.Reopen(t), nil) // a fresh process each time
		res, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space)
		ar.Close()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && res.ReadBytes-res.NewBytes > int64(4<<20) {
			t.Fatalf("run %d re-read %d bytes beyond the new ones", i, res.ReadBytes-res.NewBytes)
		}
	}
	arch, err := LoadWALArchive(ctx, tr.Reopen(t), fx.Space)
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
	p := filepath.Join(fx.DataDir, "spaces", fx.Space, "wal", segs[0].Name)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0}, 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fx.Write(t, 1<<20)
	ar := NewWALArchiver(tr.Reopen(t), nil)
	defer ar.Close()
	if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err == nil {
		t.Fatal("a segment rewritten below its archived size was archived")
	}
}

// newWALArchiveRun chunks the fixture's only segment from offset 0.
func newWALArchiveRun(t *testing.T, tr *repotest.Repo, fx *repotest.WALFixture) []WALChunk {
	t.Helper()
	segs, err := walreplay.ListSegments(fx.WALDir())
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v %v", segs, err)
	}
	f, err := os.Open(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ar := NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	w := &walRun{a: ar, sa: &spaceArchiver{known: map[chunk.ID]struct{}{}}, key: tr.ChunkKey(fx.Space), packer: tr.NewPacker(context.Background(), fx.Space)}
	chunks, _, err := w.storeStream(context.Background(), f, "wal/"+segs[0].Name, false)
	if err != nil {
		t.Fatal(err)
	}
	w.packer.Abort()
	return chunks
}

// A long-lived archiver (wal watch) stops deduplicating against packs lost
// while it runs: the next run after a reconciliation that dropped packs
// reloads the space's known set.
func TestWALArchiverReloadsKnownAfterLostPacks(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	dd := t.TempDir()
	repotest.WriteEngramSpace(t, dd, "sp", 400, 8<<10, 400)
	ar := NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	if _, err := ar.ArchiveSpace(ctx, dd, "sp"); err != nil {
		t.Fatal(err)
	}
	sa := ar.spaces["sp"]
	if len(sa.known) == 0 {
		t.Fatal("no chunks known after the first run")
	}
	for _, p := range tr.PackFiles(t) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	// As if reconcileFresh had passed: the core offers no way to expire its
	// reconciliation, so the long-lived archiver (its per-space state kept)
	// goes on with the repository opened again, which has not reconciled
	// yet and whose first reconciliation drops the lost packs, moving the
	// drop generation past the one the known set was loaded at.
	// The records of the lost chunks are archived again (the segments
	// still hold their bytes): every chunk is stored again, none is
	// deduplicated against a lost pack.
	ar.r = tr.Reopen(t)
	res, err := ar.ArchiveSpace(ctx, dd, "sp")
	if err != nil {
		t.Fatal(err)
	}
	if res.StoredBytes == 0 {
		t.Fatal("nothing stored again after every pack was lost")
	}
	r := tr.Reopen(t)
	arch, err := LoadWALArchive(ctx, r, "sp")
	if err != nil {
		t.Fatal(err)
	}
	if dmg, err := FindDamage(r, "sp", arch, nil, nil); err != nil || len(dmg) != 0 {
		t.Fatalf("archive after the lost packs: damage %v, err %v", dmg, err)
	}
}
