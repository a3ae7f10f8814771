package verify_test

import (
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/verify"
	"memento/repo/verify/verifytest"
)

// L2 of several snapshots runs as a relay (the next one walks its trees
// while the previous one streams), yet every verdict is the one of that
// snapshot verified alone, in the order asked for: a byte flipped in a pack
// of the middle snapshot fails it alone, with the same findings word for
// word, and the snapshots before and after it pass with every file hashed.
func TestVerifyL2RelayKeepsEachVerdict(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{PackSize: 1 << 20})
	sizes := []int{14 << 20, 2 << 20, 3 << 20}
	var ids []chunk.ID
	var sns []*repo.Snapshot
	for i, n := range sizes {
		src := filepath.Join(t.TempDir(), "src")
		repotest.WriteFile(t, filepath.Join(src, "a"), repotest.RandomBytes(uint64(200+i), n), 0o644)
		repotest.WriteFile(t, filepath.Join(src, "b"), repotest.RandomBytes(uint64(300+i), n/2), 0o644)
		sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
		ids = append(ids, sn.ID)
		sns = append(sns, sn)
	}
	vds := verifytest.IDs(t, tr.Repository, verify.L2, ids...)
	verifytest.WantPass(t, vds...)
	for i, vd := range vds {
		if vd.Snapshot != ids[i].String() || vd.Figures["files_hashed"] != 2 || vd.Figures["data_bytes"] != float64(sizes[i]+sizes[i]/2) {
			t.Fatalf("verdict %d: snapshot %s, figures %v; want %s, 2 files, %d bytes", i, vd.Short(), vd.Figures, ids[i].Short(), sizes[i]+sizes[i]/2)
		}
	}

	// Damage a chunk of the middle snapshot's file a.
	v, err := verify.NewVerifier(ctx, tr.Repository, verify.VerifyOptions{Level: verify.L1})
	if err != nil {
		t.Fatal(err)
	}
	w, err := v.Manifest(ctx, sns[1], &verify.Verdict{Figures: map[string]float64{}})
	if err != nil {
		t.Fatal(err)
	}
	var a *repo.Node
	for _, f := range w.Files {
		if filepath.Base(f.Rel) == "a" {
			a = f.Node
		}
	}
	if a == nil {
		t.Fatalf("no file a in %v", w.Files)
	}
	cid := a.Content[len(a.Content)/2]
	locs, err := tr.Locate("", []chunk.ID{cid})
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[cid]
	repotest.FlipByte(t, filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(loc.Pack))), int64(loc.Offset+loc.Length/2))

	alone := verifytest.IDs(t, tr.Repository, verify.L2, ids[1])[0]
	vds = verifytest.IDs(t, tr.Repository, verify.L2, ids...)
	if len(vds) != 3 {
		t.Fatalf("%d verdicts, want 3", len(vds))
	}
	verifytest.WantPass(t, vds[0], vds[2])
	pack := "pack " + repo.ShortHex(loc.Pack)
	verifytest.WantFinding(t, vds[1], verify.L2, pack+": data blob "+cid.Short()+" at offset")
	verifytest.WantFinding(t, vds[1], verify.L2, "file ", "a: cannot be read whole: chunk "+cid.Short()+": "+pack+": data blob "+cid.Short())
	if got, want := verifytest.FindingsText(vds[1]), verifytest.FindingsText(alone); got != want {
		t.Fatalf("in the relay:\n%salone:\n%s", got, want)
	}
	if vds[1].Figures["files_hashed"] != 1 || vds[0].Figures["files_hashed"] != 2 || vds[2].Figures["files_hashed"] != 2 {
		t.Fatalf("files hashed %v, %v, %v; want 2, 1, 2", vds[0].Figures["files_hashed"], vds[1].Figures["files_hashed"], vds[2].Figures["files_hashed"])
	}
}

// cancelOn cancels the verification when it loads the snapshot at.
type cancelOn struct {
	*repo.Repository
	at     chunk.ID
	cancel context.CancelFunc
}

func (c cancelOn) LoadSnapshotFile(ctx context.Context, id chunk.ID) (*repo.Snapshot, error) {
	if id == c.at {
		c.cancel()
	}
	return c.Repository.LoadSnapshotFile(ctx, id)
}

// A relay cancelled while it verifies the second snapshot returns the
// context's error, with no verdict of a snapshot it did not finish (the
// first one may be finished or not: it walks and streams while the second
// walks).
func TestVerifyL2RelayCancelled(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	var ids []chunk.ID
	for i := range 3 {
		src := filepath.Join(t.TempDir(), "src")
		repotest.WriteFile(t, filepath.Join(src, "a"), repotest.RandomBytes(uint64(400+i), 1<<20), 0o644)
		ids = append(ids, backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}}).ID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vds, err := verify.VerifySnapshots(ctx, cancelOn{tr.Repository, ids[1], cancel}, ids, verify.VerifyOptions{Level: verify.L2})
	if !errors.Is(err, context.Canceled) || len(vds) > 1 {
		t.Fatalf("cancelled: %d verdicts, %v", len(vds), err)
	}
	for _, vd := range vds {
		if vd.Snapshot != ids[0].String() || !vd.Passed {
			t.Fatalf("verdict of %s (passed %v), want only the first snapshot's, passed", vd.Short(), vd.Passed)
		}
	}
}

// A file whose bytes do not hash to its tree's BLAKE3 fails its snapshot in
// the relay with the exact finding, between two snapshots that pass.
func TestVerifyL2RelayWrongFileDigest(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	backupOf := func(seed uint64) *repo.Snapshot {
		src := filepath.Join(t.TempDir(), "src")
		repotest.WriteFile(t, filepath.Join(src, "a"), repotest.RandomBytes(seed, 1<<20), 0o644)
		return backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	}
	first := backupOf(500)
	c := repotest.NewCrafter(t, tr.Repository, "")
	data := repotest.RandomBytes(501, 200<<10)
	f := c.File("bad", data)
	wrong := repo.Hash(blake3.Sum256(data[1:]))
	f.BLAKE3 = &wrong
	crafted := c.Snapshot(c.Tree(f))
	last := backupOf(502)
	vds := verifytest.IDs(t, tr.Repository, verify.L2, first.ID, crafted.ID, last.ID)
	verifytest.WantPass(t, vds[0], vds[2])
	sum := blake3.Sum256(data)
	want := "L2 file bad: content BLAKE3 " + hex.EncodeToString(sum[:])[:16] + " does not match the tree's"
	var l2 []string
	for _, f := range vds[1].Findings {
		if f.Level == verify.L2 {
			l2 = append(l2, f.String())
		}
	}
	if len(l2) != 1 || l2[0] != want || vds[1].Figures["files_hashed"] != 0 {
		t.Fatalf("L2 findings %q (files hashed %v), want only %q", l2, vds[1].Figures["files_hashed"], want)
	}
}

// A relay of five snapshots (two walk at once, each later one starts its
// walk when the one two places before it starts streaming): every verdict
// comes back, in the order asked for, the fourth alone failing with its
// exact finding, and each figure is the snapshot's own.
func TestVerifyL2RelayWalksTwoAhead(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	var ids []chunk.ID
	var want string
	for i := range 5 {
		if i == 3 {
			c := repotest.NewCrafter(t, tr.Repository, "")
			data := repotest.RandomBytes(611, 300<<10)
			f := c.File("bad", data)
			wrong := repo.Hash(blake3.Sum256(data[2:]))
			f.BLAKE3 = &wrong
			ids = append(ids, c.Snapshot(c.Tree(f)).ID)
			sum := blake3.Sum256(data)
			want = "L2 file bad: content BLAKE3 " + hex.EncodeToString(sum[:])[:16] + " does not match the tree's"
			continue
		}
		src := filepath.Join(t.TempDir(), "src")
		repotest.WriteFile(t, filepath.Join(src, "a"), repotest.RandomBytes(uint64(600+i), (i+1)<<19), 0o644)
		ids = append(ids, backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}}).ID)
	}
	vds := verifytest.IDs(t, tr.Repository, verify.L2, ids...)
	if len(vds) != 5 {
		t.Fatalf("%d verdicts, want 5", len(vds))
	}
	for i, vd := range vds {
		if vd.Snapshot != ids[i].String() {
			t.Fatalf("verdict %d is of %s, want %s", i, vd.Short(), ids[i].Short())
		}
		if i == 3 {
			continue
		}
		verifytest.WantPass(t, vd)
		if vd.Figures["files_hashed"] != 1 || vd.Figures["data_bytes"] != float64((i+1)<<19) {
			t.Fatalf("verdict %d: figures %v, want 1 file of %d bytes", i, vd.Figures, (i+1)<<19)
		}
	}
	var l2 []string
	for _, f := range vds[3].Findings {
		if f.Level == verify.L2 {
			l2 = append(l2, f.String())
		}
	}
	if len(l2) != 1 || l2[0] != want {
		t.Fatalf("fourth snapshot's L2 findings %q, want only %q", l2, want)
	}
}
