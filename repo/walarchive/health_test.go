package walarchive

import (
	"context"
	"slices"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// MissingFiles finds a run file number that is neither present nor folded
// into a consolidation, and says nothing for archives whose consolidations
// predate numbering.
func TestWALArchiveMissingFiles(t *testing.T) {
	run := func(seq uint64) *ArchiveFile { return &ArchiveFile{Seq: seq} }
	cons := func(seq uint64) *ArchiveFile { return &ArchiveFile{Seq: seq, Supersedes: []string{"x"}} }
	cases := []struct {
		name  string
		files []*ArchiveFile
		want  []uint64
	}{
		{"runs in order", []*ArchiveFile{run(1), run(2), run(3)}, nil},
		{"middle run gone", []*ArchiveFile{run(1), run(3)}, []uint64{2}},
		{"first run gone", []*ArchiveFile{run(2), run(3)}, []uint64{1}},
		{"consolidation then runs", []*ArchiveFile{cons(64), run(65), run(67)}, []uint64{66}},
		{"runs before numbering", []*ArchiveFile{run(0), run(0), run(1), run(2)}, nil},
		{"unnumbered consolidation", []*ArchiveFile{cons(0), run(2), run(5)}, nil},
		{"same number twice (two writers)", []*ArchiveFile{run(1), run(2), run(2), run(3)}, nil},
	}
	for _, c := range cases {
		w := newWALArchive(Legacy("s"))
		for _, f := range c.files {
			w.numbered(f)
		}
		if got := w.MissingFiles(); !slices.Equal(got, c.want) {
			t.Errorf("%s: missing %v, want %v", c.name, got, c.want)
		}
	}
}

// Numbers survive a consolidation: runs after it continue from its number,
// a reload finds nothing missing, and deleting one of the later run files is
// found by its number.
func TestWALFileNumbersAcrossConsolidation(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	w, err := LoadWALArchive(ctx, tr.Repository, "sp")
	if err != nil {
		t.Fatal(err)
	}
	rec := func(i uint64) []WALSegmentRecord {
		return []WALSegmentRecord{{Name: walreplay.SegmentName(i*10 + 1), FirstSeq: i*10 + 1, LastSeq: i*10 + 10, FirstTS: int64(i), LastTS: int64(i),
			Entries: 10, Size: 100, Chunks: []WALChunk{{ID: chunk.ID{byte(i)}, Size: 100}}, Sealed: true}}
	}
	names := map[uint64]string{}
	save := func(i uint64) {
		before := map[string]bool{}
		for n := range w.files {
			before[n] = true
		}
		if err := SaveWALFile(ctx, tr.Repository, w, "h", rec(i)); err != nil {
			t.Fatal(err)
		}
		for n := range w.files {
			if !before[n] {
				names[w.fileSeq] = n
			}
		}
	}
	for i := uint64(0); i < 4; i++ {
		save(i)
	}
	if err := ConsolidateWAL(ctx, tr.Repository, w, "h"); err != nil {
		t.Fatal(err)
	}
	for i := uint64(4); i < 7; i++ {
		save(i)
	}
	w2, err := LoadWALArchive(ctx, tr.Repository, "sp")
	if err != nil {
		t.Fatal(err)
	}
	if m := w2.MissingFiles(); len(m) != 0 || w2.fileSeq != 7 || w2.consSeq != 4 {
		t.Fatalf("after a consolidation: missing %v, file seq %d, consolidation %d", m, w2.fileSeq, w2.consSeq)
	}
	if err := tr.Backend.Delete(ctx, names[6]); err != nil {
		t.Fatal(err)
	}
	w3, err := LoadWALArchive(ctx, tr.Repository, "sp")
	if err != nil {
		t.Fatal(err)
	}
	if m := w3.MissingFiles(); !slices.Equal(m, []uint64{6}) {
		t.Fatalf("run file 6 deleted: missing %v", m)
	}
}
