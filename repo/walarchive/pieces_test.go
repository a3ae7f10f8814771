package walarchive

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/walreplay"
)

// pieceWAL writes a space's WAL of incompressible entries (so that stored
// bytes are the raw bytes plus the pack's overhead) for the piece tests.
type pieceWAL struct {
	dd, space string
	w         *walreplay.Writer
	seq       uint64
	rng       *rand.Rand
}

func newPieceWAL(t *testing.T, segSize int64) *pieceWAL {
	t.Helper()
	p := &pieceWAL{dd: t.TempDir(), space: "sp", rng: rand.New(rand.NewPCG(15, 1))}
	var err error
	p.w, err = walreplay.OpenWriter(filepath.Join(p.dd, "spaces", p.space, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.w.Close() })
	return p
}

// sealed reports whether the archive's record of segment name is sealed.
func (p *pieceWAL) sealed(ctx context.Context, t *testing.T, ar *WALArchiver, name string) bool {
	t.Helper()
	pos, err := ar.Position(ctx, p.space)
	if err != nil {
		t.Fatal(err)
	}
	rec := pos.Record(name, false)
	if rec != nil {
		checkPieces(t, rec)
	}
	return rec != nil && rec.Sealed
}

// add appends n entries with 4-12 KiB of random embedding.
func (p *pieceWAL) add(t *testing.T, n int) {
	t.Helper()
	for range n {
		p.seq++
		emb := make([]float32, 1<<10+p.rng.IntN(2<<10))
		for i := range emb { // random sign, exponent (finite) and mantissa
			emb[i] = math.Float32frombits(p.rng.Uint32()&0x807fffff | (1+p.rng.Uint32N(254))<<23)
		}
		e := &walreplay.Entry{Seq: p.seq, TimestampNS: repotest.EngramEpoch + int64(p.seq)*1000, Type: walreplay.EpisodeStore,
			Payload: walreplay.AppendRecord(nil, &walreplay.Record{ID: fmt.Sprintf("mem-%07d", p.seq), Content: "a memory", Embedding: emb})}
		if err := p.w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// archivedBytes reads a record's chunks back from the repository.
func archivedBytes(t *testing.T, r *repo.Repository, space string, rec *WALSegmentRecord) []byte {
	t.Helper()
	var out []byte
	for _, c := range rec.Chunks {
		b, err := r.ReadBlob(context.Background(), space, repo.DataBlob, c.ID)
		if err != nil {
			t.Fatalf("segment %s chunk %s: %v", rec.Name, c.ID.Short(), err)
		}
		if len(b) != int(c.Size) {
			t.Fatalf("segment %s chunk %s: %d bytes, record says %d", rec.Name, c.ID.Short(), len(b), c.Size)
		}
		out = append(out, b...)
	}
	return out
}

// checkPieces checks the shape of a record's tail: its pieces at least
// halve from one to the next (pieceMerge's bound).
func checkPieces(t *testing.T, rec *WALSegmentRecord) {
	t.Helper()
	i, _ := rec.TailStart()
	tail := rec.Chunks[i:]
	for k := 1; k < len(tail); k++ {
		if tail[k-1].Size < 2*tail[k].Size {
			t.Fatalf("segment %s: piece %d (%d bytes) is less than twice the next (%d bytes): pieces %+v", rec.Name, k-1, tail[k-1].Size, tail[k].Size, tail)
		}
	}
	if rec.Pieces > 20 {
		t.Fatalf("segment %s: %d pieces", rec.Name, rec.Pieces)
	}
}

// TestWALArchivePieces archives a WAL written in many tiny runs (2-4 entries
// each, as `wal watch` does under a steady write load) and checks what the
// pieces are for and that nothing is lost to them:
//
//   - a run that reaches no chunk boundary stores only the appended bytes
//     (plus the pieces it joins, pieceMerge): StoredBytes per run is the
//     appended bytes plus the pack's overhead, where the tail re-cut of
//     every run used to store the whole partial chunk;
//   - every record restores the segment's bytes exactly, also after a
//     restart in the middle of a tail (a new archiver resumes from the
//     record's pieces);
//   - once a boundary is reached, and when the segment is sealed, the
//     record's chunks are those a backup of the same file cuts, so the
//     archive and the snapshots share them.
func TestWALArchivePieces(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	p := newPieceWAL(t, 1536<<10) // 1.5 MiB segments: one 1 MiB boundary, then sealed
	p.add(t, 3)
	ar := NewWALArchiver(tr.Repository, nil)
	defer func() { ar.Close() }()
	if _, err := ar.ArchiveSpace(ctx, p.dd, p.space); err != nil {
		t.Fatal(err)
	}
	const overhead = 256 // the most a run's pack adds to the bytes of its one chunk
	var (
		runs, pieceRuns, merged int
		newBytes, stored        int64
		oldWay                  int64 // what re-storing the whole partial chunk each run would store
		maxPieces               int
	)
	openChecked := false
	for segs := 1; segs < 2; runs++ {
		p.add(t, 2+p.rng.IntN(3))
		if runs == 30 { // a restart in the middle of a tail
			ar.Close()
			ar = NewWALArchiver(tr.Reopen(t), nil)
		}
		res, err := ar.ArchiveSpace(ctx, p.dd, p.space)
		if err != nil {
			t.Fatalf("run %d: %v", runs, err)
		}
		list, err := walreplay.ListSegments(filepath.Join(p.dd, "spaces", p.space, "wal"))
		if err != nil {
			t.Fatal(err)
		}
		segs = len(list)
		pos, err := ar.Position(ctx, p.space)
		if err != nil {
			t.Fatal(err)
		}
		rec := pos.Record(list[len(list)-1].Name, false)
		if rec == nil || res.NewBytes == 0 {
			t.Fatalf("run %d: nothing archived (%+v)", runs, res)
		}
		checkPieces(t, rec)
		maxPieces = max(maxPieces, rec.Pieces)
		newBytes += res.NewBytes
		stored += res.StoredBytes
		_, tailStart := rec.TailStart()
		oldWay += rec.Size - tailStart
		if !openChecked && rec.Size > 1<<20+64<<10 && rec.Pieces > 0 {
			// Past the first boundary with pieces after it: the chunk
			// before the tail is the one a backup cuts.
			openChecked = true
			k, _ := rec.TailStart()
			want := snapshotFileChunks(t, tr.Repository, backuptest.Space(t, tr.Repository, p.dd, p.space))[rec.Name]
			if k != 1 || len(want) != 2 || rec.Chunks[0].ID != want[0] || rec.Chunks[0].Size != 1<<20 {
				t.Fatalf("open segment %s of %d bytes: chunks before the tail %+v, a backup's %v", rec.Name, rec.Size, rec.Chunks[:k], want)
			}
		}
		if rec.Pieces > 0 {
			pieceRuns++
			last := int64(rec.Chunks[len(rec.Chunks)-1].Size)
			if last > res.NewBytes {
				merged++
			} else if res.StoredBytes < res.NewBytes || res.StoredBytes > res.NewBytes+overhead {
				t.Fatalf("run %d appended %d bytes as a piece and stored %d (want the appended bytes + at most %d)", runs, res.NewBytes, res.StoredBytes, overhead)
			}
			if res.StoredBytes > last+overhead {
				t.Fatalf("run %d stored %d bytes for a new piece of %d", runs, res.StoredBytes, last)
			}
		}
	}
	t.Logf("%d runs, %d of them adding a piece (%d joined older pieces), at most %d pieces; %d bytes appended, %d stored (re-storing the partial chunk every run: %d)",
		runs, pieceRuns, merged, maxPieces, newBytes, stored, oldWay)
	if pieceRuns < runs*3/4 || pieceRuns-merged < runs/3 || maxPieces < 3 {
		t.Fatalf("%d runs: %d added a piece, %d of them joined older ones, at most %d pieces: the test did not exercise pieces", runs, pieceRuns, merged, maxPieces)
	}
	// Pieces store each appended byte a few times (half the log2 of the
	// tail over the append, on average: here about 2.5), and the tail once
	// more as a backup's chunks (the 1 MiB chunk at the boundary, the last
	// 0.5 MiB when sealed): here about 4.6 times the appended bytes, a
	// quarter of re-storing the partial chunk every run.
	if stored > 6*newBytes || stored*3 > oldWay {
		t.Fatalf("stored %d bytes for %d appended (re-storing the partial chunk: %d)", stored, newBytes, oldWay)
	}

	if !openChecked {
		t.Fatal("the open segment never had pieces after a boundary")
	}
	// Every record restores its segment's bytes; the sealed one's chunks
	// are a backup's.
	r := tr.Reopen(t)
	arch, err := LoadWALArchive(ctx, r, p.space)
	if err != nil {
		t.Fatal(err)
	}
	backed := snapshotFileChunks(t, r, backuptest.Space(t, r, p.dd, p.space))
	chain := arch.Chain()
	if len(chain) != 2 {
		t.Fatalf("%d records, want 2", len(chain))
	}
	for i, rec := range chain {
		disk, err := os.ReadFile(filepath.Join(p.dd, "spaces", p.space, "wal", rec.Name))
		if err != nil {
			t.Fatal(err)
		}
		if got := archivedBytes(t, r, p.space, rec); !bytes.Equal(got, disk[:rec.Size]) {
			t.Fatalf("segment %s: the archived %d bytes differ from the file's", rec.Name, rec.Size)
		}
		ids := make([]chunk.ID, len(rec.Chunks))
		for k, c := range rec.Chunks {
			ids[k] = c.ID
		}
		if i == 0 && (!rec.Sealed || rec.Pieces != 0 || !slices.Equal(ids, backed[rec.Name])) {
			t.Fatalf("sealed segment %s (pieces %d): chunks %v, a backup's %v", rec.Name, rec.Pieces, ids, backed[rec.Name])
		}
	}
}

// snapshotFileChunks returns the chunks of every file of a snapshot by name.
func snapshotFileChunks(t *testing.T, r *repo.Repository, sn *repo.Snapshot) map[string][]chunk.ID {
	t.Helper()
	out := map[string][]chunk.ID{}
	var walk func(id chunk.ID)
	walk = func(id chunk.ID) {
		tree, err := r.LoadTree(context.Background(), sn.Space, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tree.Nodes {
			if n.Subtree != nil {
				walk(*n.Subtree)
			} else if n.Type == "file" {
				out[n.Name] = n.Content
			}
		}
	}
	walk(sn.Root)
	return out
}

// A sealed segment whose record ends in pieces (its last run happened while
// it was open) gets one more record once sealed, with the pieces joined into
// the last chunk a backup cuts, even when no byte was added.
func TestWALArchiveSealJoinsPieces(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	p := newPieceWAL(t, 200<<10)
	ar := NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	name := walreplay.SegmentName(1)
	var res *WALArchiveResult
	for {
		// One entry per run: the run after the writer moved to a new
		// segment finds nothing new in the first one, only sealed.
		p.add(t, 1)
		before, _ := ar.Position(ctx, p.space)
		var prev WALSegmentRecord
		if r := before.Record(name, false); r != nil {
			prev = *r
		}
		var err error
		if res, err = ar.ArchiveSpace(ctx, p.dd, p.space); err != nil {
			t.Fatal(err)
		}
		if pos, _ := ar.Position(ctx, p.space); pos.Record(name, false).Sealed {
			if prev.Pieces == 0 || prev.Sealed || prev.Size != pos.Record(name, false).Size {
				t.Fatalf("record before sealing %+v, want an open one with pieces and every byte", prev)
			}
			break
		}
	}
	pos, _ := ar.Position(ctx, p.space)
	rec := pos.Record(name, false)
	if !rec.Sealed || rec.Pieces != 0 || len(rec.Chunks) != 1 || int64(rec.Chunks[0].Size) != rec.Size {
		t.Fatalf("sealed record %+v, want one chunk of the segment's %d bytes", rec, rec.Size)
	}
	if res.StoredBytes < rec.Size {
		t.Fatalf("stored %d bytes, want the sealed segment's %d again (joined) and the new segment's", res.StoredBytes, rec.Size)
	}
	disk, _ := os.ReadFile(filepath.Join(p.dd, "spaces", p.space, "wal", name))
	if got := archivedBytes(t, tr.Repository, p.space, rec); !bytes.Equal(got, disk) {
		t.Fatal("the sealed record's bytes differ from the file")
	}
}

// A segment rewritten in place below its archived size is refused when the
// bytes of a piece that a run stores again changed.
func TestWALArchivePieceRewriteRefused(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	p := newPieceWAL(t, 4<<20)
	ar := NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	for _, n := range []int{10, 1} { // a tail of 10 entries, then a piece of one
		p.add(t, n)
		if _, err := ar.ArchiveSpace(ctx, p.dd, p.space); err != nil {
			t.Fatal(err)
		}
	}
	pos, _ := ar.Position(ctx, p.space)
	rec := pos.Record(walreplay.SegmentName(1), false)
	if rec.Pieces == 0 {
		t.Fatalf("record %+v has no pieces", rec)
	}
	// The last piece is joined by the next run (it is less than twice the
	// size of what is appended): corrupt a byte of it.
	_, start := rec.TailStart()
	at := rec.Size - int64(rec.Chunks[len(rec.Chunks)-1].Size) + 10
	if at < start {
		t.Fatal("bad test")
	}
	f, err := os.OpenFile(filepath.Join(p.dd, "spaces", p.space, "wal", rec.Name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XXXX"), at); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p.add(t, 3)
	_, err = ar.ArchiveSpace(ctx, p.dd, p.space)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("differ from the archived chunk")) {
		t.Fatalf("archive of a segment rewritten inside a piece: %v", err)
	}
}

// In a repository of parameter set 1 (content-defined WAL chunks, MinSize
// 512 KiB) a tail longer than MinSize is chunked again by every run, and
// keeps its pieces until the chunker finds a boundary: the records still
// restore the bytes, and the sealed segment's chunks are a backup's.
func TestWALArchivePiecesContentDefined(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	tr.SetConfigParams(t, chunk.ParamSet1)
	r := tr.Reopen(t)
	if r.Config().ParamSet() != chunk.ParamSet1 {
		t.Fatalf("param set %d", r.Config().ParamSet())
	}
	p := newPieceWAL(t, 1280<<10)
	ar := NewWALArchiver(r, nil)
	defer ar.Close()
	name := walreplay.SegmentName(1)
	// Runs that left pieces in a tail past MinSize. How many runs of one
	// segment do depends on where the repository's random polynomial cuts
	// (a cut soon after MinSize leaves few), so the WAL goes on into more
	// segments until 5 were seen: the count is then the same on every run
	// of the test, and the first segment is sealed.
	longTails := 0
	for runs := 0; longTails < 5 || !p.sealed(ctx, t, ar, name); runs++ {
		if runs == 1000 {
			t.Fatalf("%d archive runs: only %d left pieces in a tail past MinSize", runs, longTails)
		}
		p.add(t, 3+p.rng.IntN(3))
		if _, err := ar.ArchiveSpace(ctx, p.dd, p.space); err != nil {
			t.Fatal(err)
		}
		pos, _ := ar.Position(ctx, p.space)
		rec := pos.Record(p.w.Segment(), false) // the open segment
		if rec == nil {
			continue // a segment just started, with nothing archived yet
		}
		checkPieces(t, rec)
		if _, start := rec.TailStart(); rec.Pieces > 0 && rec.Size-start > 512<<10 {
			longTails++
		}
	}
	arch, err := LoadWALArchive(ctx, tr.Reopen(t), p.space)
	if err != nil {
		t.Fatal(err)
	}
	rec := arch.Record(name, false)
	backed := snapshotFileChunks(t, r, backuptest.Space(t, r, p.dd, p.space))[name]
	ids := make([]chunk.ID, len(rec.Chunks))
	for k, c := range rec.Chunks {
		ids[k] = c.ID
	}
	if rec.Pieces != 0 || !slices.Equal(ids, backed) {
		t.Fatalf("sealed segment (pieces %d): chunks %v, a backup's %v", rec.Pieces, ids, backed)
	}
	disk, _ := os.ReadFile(filepath.Join(p.dd, "spaces", p.space, "wal", name))
	if got := archivedBytes(t, r, p.space, rec); !bytes.Equal(got, disk) {
		t.Fatal("the sealed record's bytes differ from the file")
	}
}
