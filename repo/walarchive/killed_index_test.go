package walarchive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"memento/index"
	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// failIndexRepo is a real repository whose next SaveIndexFile fails after
// nothing was written: the run's packs are in data/, no index file names
// them (an archive run stopped between its packs and its index file).
type failIndexRepo struct {
	*repo.Repository
	fail atomic.Bool
}

var errIndexLost = errors.New("index file write lost")

func (f *failIndexRepo) SaveIndexFile(ctx context.Context, packs []index.PackInfo) (func() error, error) {
	if f.fail.Swap(false) {
		return nil, errIndexLost
	}
	return f.Repository.SaveIndexFile(ctx, packs)
}

// TestWALArchiveNoRecordNamesUnindexedChunk is the data-integrity invariant
// of the archive: a wal/ record names only chunks that are in a pack an
// index file describes. A run whose packs were written but whose index file
// was not must not leave its chunks in the archiver's known set: the next
// run of the same long-lived archiver (wal watch) would deduplicate against
// them and write a record whose chunks are "in no pack of the repository",
// which pitr ranges then drops.
func TestWALArchiveNoRecordNamesUnindexedChunk(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	fx := repotest.NewWALFixture(t, 64<<20)
	ctx := context.Background()
	fr := &failIndexRepo{Repository: tr.Reopen(t)}
	ar := NewWALArchiver(fr, nil)
	defer ar.Close()

	fx.Write(t, 1<<20)
	if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil {
		t.Fatal(err)
	}
	fx.Write(t, 3<<20)
	fr.fail.Store(true)
	if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); !errors.Is(err, errIndexLost) {
		t.Fatalf("run with a lost index file: err %v, want %v", err, errIndexLost)
	}
	// The run's record file, staged while the pack was written, was
	// dropped: no record and no temporary file of it remain.
	if err := filepath.WalkDir(tr.Dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left by the failed run: %s", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The same bytes again: the run re-cuts them into the same chunks as
	// the failed run stored.
	res, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 1 || res.StoredBytes == 0 {
		t.Fatalf("run after the lost index file: %d segments, %d bytes of packs stored; want 1 segment and its chunks stored again", res.Segments, res.StoredBytes)
	}

	r := tr.Reopen(t) // another process: its index comes from the repository's index files
	arch, err := LoadWALArchive(ctx, r, fx.Space)
	if err != nil {
		t.Fatal(err)
	}
	dmg, err := FindDamage(r, fx.Space, arch, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dmg {
		t.Errorf("archived record names chunks no index file places: %s", d)
	}
	if end, _ := arch.End(); end == 0 || len(arch.Segments()) != 1 || !strings.HasPrefix(arch.Segments()[0].Name, "wal-") {
		t.Fatalf("archive: end %d, %d records", end, len(arch.Segments()))
	}
}

// TestWALArchiveRepairsRecordWithLostChunks: a record whose chunks are in
// no pack (their packs never reached the repository) is archived again by
// the next run while the segment still holds its bytes, instead of being
// taken as archived; when the segment is now shorter than the record, the
// run says which chunk is missing rather than "rewritten in place".
func TestWALArchiveRepairsRecordWithLostChunks(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	fx := repotest.NewWALFixture(t, 64<<20)
	ctx := context.Background()
	fx.Write(t, 2<<20)
	ar := NewWALArchiver(tr.Reopen(t), nil)
	if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil {
		t.Fatal(err)
	}
	ar.Close()
	// The packs are lost (as if never stored); the record stays.
	var packs []string
	if err := tr.Backend.List(ctx, repo.DirData, func(name string, _ int64) error {
		packs = append(packs, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range packs {
		if err := tr.Backend.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	damaged := func() []WALDamage {
		t.Helper()
		r := tr.Reopen(t)
		if _, err := r.KnownBlobs(ctx, fx.Space); err != nil { // reconciles: the lost packs are dropped
			t.Fatal(err)
		}
		arch, err := LoadWALArchive(ctx, r, fx.Space)
		if err != nil {
			t.Fatal(err)
		}
		dmg, err := FindDamage(r, fx.Space, arch, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return dmg
	}
	if dmg := damaged(); len(dmg) != 1 || !strings.Contains(dmg[0].Reason, "in no pack") {
		t.Fatalf("damage before the repair: %v", dmg)
	}
	ar = NewWALArchiver(tr.Reopen(t), nil)
	res, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space)
	ar.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StoredBytes == 0 {
		t.Fatalf("the run stored nothing: %+v", res)
	}
	if dmg := damaged(); len(dmg) != 0 {
		t.Fatalf("damage after the repair: %v", dmg)
	}
}

// TestWALArchiveShorterSegmentThanLostRecord: the segment is now shorter
// than a record whose chunks are lost (a restore to the end of the ranges,
// which end before that record): the run names the lost chunk instead of
// calling the WAL rewritten in place.
func TestWALArchiveShorterSegmentThanLostRecord(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	fx := repotest.NewWALFixture(t, 64<<20)
	ctx := context.Background()
	fx.Write(t, 1<<20)
	ar := NewWALArchiver(tr.Reopen(t), nil)
	if _, err := ar.ArchiveSpace(ctx, fx.DataDir, fx.Space); err != nil {
		t.Fatal(err)
	}
	ar.Close()
	for _, p := range tr.PackFiles(t) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	segs, err := walreplay.ListSegments(filepath.Join(fx.DataDir, "spaces", fx.Space, "wal"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v %v", segs, err)
	}
	fi, err := os.Stat(segs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segs[0].Path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	ar = NewWALArchiver(tr.Reopen(t), nil)
	defer ar.Close()
	_, err = ar.ArchiveSpace(ctx, fx.DataDir, fx.Space)
	if !errors.Is(err, walreplay.ErrCorrupt) || !strings.Contains(err.Error(), "which is in no pack of the repository") ||
		strings.Contains(err.Error(), "rewritten in place") {
		t.Fatalf("err %v, want the lost chunk named", err)
	}
}
