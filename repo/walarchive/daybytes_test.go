package walarchive

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// TestWALArchiveDayBytes pins what the benchmark's day stores for the WAL
// (scripts/bench.sh: first backup, `wal archive`, a day of appends, `wal
// archive`, backup), on incompressible entries so that stored bytes are the
// raw bytes plus the packs' overhead:
//
//   - the archive run after the first backup stores nothing: the backup
//     cut the open segment into the same chunks (fixed 1 MiB, the last one
//     cut by the file's end);
//   - the day's run stores the appended bytes plus the backup's partial
//     last chunk once more, inside the first full chunk the append
//     completes (end minus the start of the record's tail): a chunk ID
//     names whole chunks only, and the snapshots need that full chunk;
//   - the backup after the day stores none of the WAL: every chunk it cuts
//     is one the archive stored.
func TestWALArchiveDayBytes(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	p := newPieceWAL(t, 64<<20)
	size := func() int64 { // the open segment's bytes (the only segment)
		fi, err := os.Stat(filepath.Join(p.dd, "spaces", p.space, "wal", p.w.Segment()))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	p.add(t, 1)
	for size() < 2<<20+600<<10 { // 2 full chunks and a partial one of about 0.6 MiB
		p.add(t, 8)
	}
	first := backuptest.Space(t, tr.Repository, p.dd, p.space)
	if first.Summary.NewBytes < uint64(size()) {
		t.Fatalf("first backup stored %d new bytes, want the WAL's %d at least", first.Summary.NewBytes, size())
	}
	ar := NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	res, err := ar.ArchiveSpace(ctx, p.dd, p.space)
	if err != nil {
		t.Fatal(err)
	}
	if res.StoredBytes != 0 || res.NewBytes != size() {
		t.Fatalf("archive after the first backup: %d bytes stored, %d new (want 0 stored, the WAL's %d new)", res.StoredBytes, res.NewBytes, size())
	}
	pos, _ := ar.Position(ctx, p.space)
	rec := pos.Record(p.w.Segment(), false)
	_, tailStart := rec.TailStart()
	before := size()
	if tailStart != 2<<20 {
		t.Fatalf("record of %d bytes: tail starts at %d, want the last 1 MiB boundary", rec.Size, tailStart)
	}
	for size() < before+3<<20 { // the day: 3 MiB appended, crossing three boundaries
		p.add(t, 8)
	}
	end := size()
	res, err = ar.ArchiveSpace(ctx, p.dd, p.space)
	if err != nil {
		t.Fatal(err)
	}
	const overhead = 256 // the most a pack adds per chunk (header entry, seal)
	if res.NewBytes != end-before {
		t.Fatalf("the day's archive: %d new bytes, want %d", res.NewBytes, end-before)
	}
	want := end - tailStart // the appended bytes and the old partial chunk again
	if res.StoredBytes < want || res.StoredBytes > want+5*overhead {
		t.Fatalf("the day's archive stored %d bytes for %d appended; want %d (the old partial chunk of %d bytes again) + at most %d of overhead",
			res.StoredBytes, end-before, want, before-tailStart, 5*overhead)
	}
	t.Logf("the day: %d bytes appended to a segment of %d, %d stored (the old partial chunk: %d)", end-before, before, res.StoredBytes, before-tailStart)
	day := backuptest.Space(t, tr.Repository, p.dd, p.space)
	if day.Summary.NewBytes != 0 {
		t.Fatalf("backup after the day's archive stored %d new bytes of %d chunks, want none of the WAL", day.Summary.NewBytes, day.Summary.NewChunks)
	}
}
