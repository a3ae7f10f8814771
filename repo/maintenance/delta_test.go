package maintenance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// warmRel is where the delta tests keep a warm page file: its chunks are
// cut at fixed 32 KiB offsets (chunk.ParamsWarm).
const warmRel = "warm/warm_tier.dat"

// deltaRepo is a format-4 repository holding three snapshots of a
// directory with a 256 KiB warm page file (8 chunks of 8 pages): sn1 whole,
// sn2 with pages rewritten in chunks 2 and 5, sn3 with one more page
// rewritten in chunk 2 (whose parent chunk is then a delta).
type deltaFixture struct {
	tr            *repotest.Repo
	src           string
	sn            [3]*repo.Snapshot
	files         [3][]byte // the warm file at each snapshot
	chunks        [3][]chunk.ID
	base2, delta2 chunk.ID // chunk 2 at sn1 (the base) and at sn3 (a delta of it)
}

func rewritePage(b []byte, page int, seed uint64) []byte {
	b = bytes.Clone(b)
	copy(b[page*chunk.DeltaPageSize+8:(page+1)*chunk.DeltaPageSize], repotest.RandomBytes(seed, chunk.DeltaPageSize-8))
	return b
}

func newDeltaFixture(t *testing.T) *deltaFixture {
	t.Helper()
	f := &deltaFixture{tr: repotest.New(t, repo.InitOptions{}), src: t.TempDir()}
	if !f.tr.Config().DeltaBlobs() {
		t.Fatalf("a new repository of format %d has no delta blobs", f.tr.Config().Version)
	}
	f.files[0] = repotest.WarmPages(5, 256<<10)
	f.files[1] = rewritePage(rewritePage(f.files[0], 2*8+3, 11), 5*8, 12)
	f.files[2] = rewritePage(f.files[1], 2*8+6, 13)
	repotest.WriteFile(t, filepath.Join(f.src, "other"), []byte("another file\n"), 0o644)
	for i := range f.files {
		repotest.WriteFile(t, filepath.Join(f.src, warmRel), f.files[i], 0o644)
		f.sn[i] = backuptest.Backup(t, f.tr.Repository, backup.BackupOptions{Paths: []string{f.src}, Host: "h"})
		f.chunks[i] = f.tr.NodeAt(t, f.sn[i], f.nodePath()).Content
	}
	f.base2, f.delta2 = f.chunks[0][2], f.chunks[2][2]
	return f
}

// nodePath is the warm file's path inside a snapshot of f.src.
func (f *deltaFixture) nodePath() string {
	return filepath.Base(f.src) + "/" + warmRel
}

// flags returns the first index location's flags of a data blob.
func flags(t *testing.T, r *repo.Repository, id chunk.ID) uint8 {
	t.Helper()
	l, err := r.Locate("", []chunk.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	return l[id].Flags
}

// baseOf reads a delta blob's frame.
func baseOf(t *testing.T, r *repo.Repository, id chunk.ID) chunk.ID {
	t.Helper()
	l, err := r.Locate("", []chunk.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	bases, errs := r.RefTargets(context.Background(), "", []chunk.ID{id}, []index.Location{l[id]})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	return bases[0]
}

func (f *deltaFixture) restoredWarm(t *testing.T, r *repo.Repository, i int) []byte {
	t.Helper()
	dst := restoretest.Restore(t, r, f.sn[i])
	b, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(f.nodePath())))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeltaBlobsBackupAndRestore: the backup after a page rewrite stores
// the two changed chunks as deltas of the first snapshot's (and chunk 2 of
// the third snapshot against the first snapshot's chunk, not against the
// delta), every snapshot restores byte for byte, and the node's content
// list is the chunk IDs of the plaintexts, as without deltas.
func TestDeltaBlobsBackupAndRestore(t *testing.T) {
	f := newDeltaFixture(t)
	r := f.tr.Repository
	for i, c := range f.chunks[1] {
		if got, delta := flags(t, r, c), i == 2 || i == 5; (got == repo.FlagDelta) != delta {
			t.Errorf("sn2 chunk %d: flags %#x, want a delta: %v", i, got, delta)
		}
		if key := r.ChunkKey(""); key.Sum(f.files[1][i*32<<10:(i+1)*32<<10]) != c {
			t.Errorf("sn2 chunk %d: ID is not the keyed hash of its plaintext", i)
		}
	}
	if got := baseOf(t, r, f.chunks[1][5]); got != f.chunks[0][5] {
		t.Fatalf("sn2 chunk 5: base %s, want sn1's %s", got.Short(), f.chunks[0][5].Short())
	}
	if flags(t, r, f.delta2) != repo.FlagDelta || baseOf(t, r, f.delta2) != f.base2 {
		t.Fatalf("sn3 chunk 2: flags %#x base %s, want a delta of sn1's chunk %s", flags(t, r, f.delta2), baseOf(t, r, f.delta2).Short(), f.base2.Short())
	}
	for i := range f.sn {
		if got := f.restoredWarm(t, f.tr.Reopen(t), i); !bytes.Equal(got, f.files[i]) {
			t.Fatalf("snapshot %d: restored warm file differs", i)
		}
	}
	got, err := f.tr.Reopen(t).ReadBlob(context.Background(), "", repo.DataBlob, f.delta2)
	if err != nil || !bytes.Equal(got, f.files[2][2*32<<10:3*32<<10]) {
		t.Fatalf("ReadBlob of a delta: %v", err)
	}
}

// TestDeltaBlobsFormat3: a repository of format 3 gets no delta blob and
// a format-3 binary refuses a format-4 repository (tested in versions_test
// for FormatVersion+1).
func TestDeltaBlobsFormat3(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	p := filepath.Join(tr.Dir, repo.ConfigName)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	repotest.WriteFile(t, p, bytes.Replace(raw, fmt.Appendf(nil, `"version": %d`, repo.FormatVersion), []byte(`"version": 3`), 1), 0o444)
	r := tr.Reopen(t)
	if r.Config().Version != 3 || r.Config().DeltaBlobs() {
		t.Fatalf("format %d, deltas %v", r.Config().Version, r.Config().DeltaBlobs())
	}
	src := t.TempDir()
	a := repotest.WarmPages(5, 256<<10)
	b := rewritePage(a, 3, 9)
	for _, data := range [][]byte{a, b} {
		repotest.WriteFile(t, filepath.Join(src, warmRel), data, 0o644)
		sn := backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{src}, Host: "h"})
		node := tr.NodeAt(t, sn, filepath.Base(src)+"/"+warmRel)
		for i, c := range node.Content {
			if flags(t, r, c)&repo.FlagDelta != 0 {
				t.Fatalf("format 3: chunk %d stored as a delta", i)
			}
		}
	}
}

// TestDeltaBlobsPruneKeepsBase: after the snapshots that list the base
// are forgotten, prune keeps the base (only the delta names it), check
// finds nothing, and the last snapshot restores byte for byte.
func TestDeltaBlobsPruneKeepsBase(t *testing.T) {
	f := newDeltaFixture(t)
	ctx := context.Background()
	if _, err := Forget(ctx, f.tr.Repository, ForgetOptions{IDs: []string{f.sn[0].ID.String(), f.sn[1].ID.String()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Prune(ctx, f.tr.Repository, PruneOptions{MaxUnused: 0}); err != nil {
		t.Fatal(err)
	}
	r := f.tr.Reopen(t)
	l, err := r.Locate("", []chunk.ID{f.base2})
	if err != nil || l[f.base2].Flags&repo.FlagDelta != 0 {
		t.Fatalf("base %s after prune: %v %+v", f.base2.Short(), err, l)
	}
	if _, err := r.Locate("", []chunk.ID{f.chunks[1][2]}); err == nil {
		t.Fatalf("sn2's delta of chunk 2, no longer used, survived the prune")
	}
	rep, err := Check(ctx, r, CheckOptions{ReadData: true})
	if err != nil || rep.Errors() != 0 {
		t.Fatalf("check after prune: %v %+v", err, rep.Findings)
	}
	if got := f.restoredWarm(t, r, 2); !bytes.Equal(got, f.files[2]) {
		t.Fatal("sn3 restored after prune differs")
	}
}

// TestDeltaBlobsCheckMissingBase: check names the delta and its base when
// the base is in no pack; a restore of the file fails naming both.
func TestDeltaBlobsCheckMissingBase(t *testing.T) {
	f := newDeltaFixture(t)
	ctx := context.Background()
	r := f.tr.Repository
	l, err := r.Locate("", []chunk.ID{f.base2})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.tr.Dir, filepath.FromSlash(repo.PackName(l[f.base2].Pack)))); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(ctx, f.tr.Reopen(t), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "delta base " + f.base2.Short() + " is in no pack: chunk " + f.delta2.Short() + " cannot be read"
	found := false
	for _, fd := range rep.Findings {
		if fd.What == "data blob "+f.delta2.Short() && fd.Message == want && fd.Severity == SevError {
			found = true
		}
	}
	if !found {
		t.Fatalf("check findings lack %q:\n%+v", want, rep.Findings)
	}
	_, err = f.tr.Reopen(t).ReadBlob(ctx, "", repo.DataBlob, f.delta2)
	if err == nil || !strings.Contains(err.Error(), "data blob "+f.delta2.Short()) || !strings.Contains(err.Error(), "delta base "+f.base2.Short()) {
		t.Fatalf("reading a delta without its base: %v", err)
	}
}

// TestDeltaBlobsRebuildIndex: an index rebuilt from the pack headers knows
// the deltas (their flag) and their bases (their frames), and sn3 restores.
func TestDeltaBlobsRebuildIndex(t *testing.T) {
	f := newDeltaFixture(t)
	ctx := context.Background()
	if err := os.RemoveAll(filepath.Join(f.tr.Dir, repo.DirIndex)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(f.tr.Cache); err != nil {
		t.Fatal(err)
	}
	r := f.tr.Reopen(t)
	if _, err := r.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	r = f.tr.Reopen(t)
	if flags(t, r, f.delta2) != repo.FlagDelta || baseOf(t, r, f.delta2) != f.base2 {
		t.Fatalf("after rebuild: flags %#x base %s", flags(t, r, f.delta2), baseOf(t, r, f.delta2).Short())
	}
	if got := f.restoredWarm(t, r, 2); !bytes.Equal(got, f.files[2]) {
		t.Fatal("sn3 restored after an index rebuild differs")
	}
}

// TestDeltaBlobsPruneKeepsBaseOfUnusedDelta: a delta no snapshot uses any
// more, left in a pack prune keeps for its other blobs, keeps its base, so
// that check --read-data (which opens every blob of every pack) finds
// nothing to report.
func TestDeltaBlobsPruneKeepsBaseOfUnusedDelta(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	src := t.TempDir()
	rewriteChunk := func(b []byte, c, seed int) []byte {
		for p := c * 8; p < (c+1)*8; p++ {
			b = rewritePage(b, p, uint64(1000*seed+p))
		}
		return b
	}
	// sn2: chunk 2 a delta of sn1's, chunk 5 whole; sn3: chunk 5 as in
	// sn2, every other chunk whole and new. Once sn1 and sn2 are
	// forgotten, sn1's pack holds nothing used (its chunk 2 is only the
	// base of sn2's unused delta), sn2's pack is kept for chunk 5.
	v1 := repotest.WarmPages(5, 256<<10)
	v2 := rewriteChunk(rewritePage(v1, 2*8+3, 11), 5, 1)
	v3 := bytes.Clone(v2)
	for _, c := range []int{0, 1, 2, 3, 4, 6, 7} {
		v3 = rewriteChunk(v3, c, 2)
	}
	var sns []*repo.Snapshot
	var chunks [][]chunk.ID
	for _, v := range [][]byte{v1, v2, v3} {
		repotest.WriteFile(t, filepath.Join(src, warmRel), v, 0o644)
		sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}, Host: "h"})
		sns = append(sns, sn)
		chunks = append(chunks, tr.NodeAt(t, sn, filepath.Base(src)+"/"+warmRel).Content)
	}
	if flags(t, tr.Repository, chunks[1][2]) != repo.FlagDelta || flags(t, tr.Repository, chunks[1][5])&repo.FlagDelta != 0 || chunks[2][5] != chunks[1][5] {
		t.Fatal("fixture: want sn2's chunk 2 a delta, its chunk 5 whole and shared with sn3")
	}
	if _, err := Forget(ctx, tr.Repository, ForgetOptions{IDs: []string{sns[0].ID.String(), sns[1].ID.String()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Prune(ctx, tr.Repository, PruneOptions{MaxUnused: 1}); err != nil {
		t.Fatal(err)
	}
	r := tr.Reopen(t)
	if _, err := r.Locate("", []chunk.ID{chunks[1][2]}); err != nil {
		t.Fatalf("fixture: the unused delta's pack was not kept: %v", err)
	}
	if _, err := r.Locate("", []chunk.ID{chunks[0][2]}); err != nil {
		t.Fatalf("the base of an unused delta in a kept pack was pruned: %v", err)
	}
	rep, err := Check(ctx, r, CheckOptions{ReadData: true})
	if err != nil || rep.Errors() != 0 {
		t.Fatalf("check --read-data after prune: %v %+v", err, rep.Findings)
	}
	// A second prune has nothing left to do, with either threshold.
	for _, mu := range []float64{1, 0.1} {
		res, err := Prune(ctx, r, PruneOptions{MaxUnused: mu})
		if err != nil || (mu == 1 && res.PacksDeleted+res.PacksRepacked != 0) {
			t.Fatalf("prune again (max unused %v): %v %+v", mu, err, res)
		}
	}
	rep, err = Check(ctx, tr.Reopen(t), CheckOptions{ReadData: true})
	if err != nil || rep.Errors() != 0 {
		t.Fatalf("check --read-data after the last prune: %v %+v", err, rep.Findings)
	}
	if res, err := Prune(ctx, r, PruneOptions{MaxUnused: 0.1}); err != nil || res.PacksDeleted+res.PacksRepacked != 0 {
		t.Fatalf("prune after a prune: %v %+v", err, res)
	}
}
