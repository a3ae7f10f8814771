package verify_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/verify"
	"memento/repo/verify/verifytest"
)

// L2 opens the chunks of the files it hashes without their keyed ID check:
// each file's BLAKE3 checks them. A validly sealed chunk whose content is
// not its ID's (repotest.Crafter.Forge) then fails its files' BLAKE3, or
// hides behind a file broken by another damaged chunk; either way L2 reads
// the chunks no file proved again with their IDs checked, finds it, and runs
// again checking every ID, so that the findings are those of a pass that
// checked them all: the pack finding naming the chunk, in stream order,
// then every file that uses it as broken, in walk order; the same run after
// run.
func TestVerifyL2ForgedChunkFoundAsBefore(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{PackSize: 256 << 10})
	c := repotest.NewCrafter(t, tr.Repository, "")
	var parts [][]byte
	for i := range 12 {
		parts = append(parts, repotest.RandomBytes(uint64(900+i), 30<<10+i*700))
	}
	key := tr.ChunkKey("")
	forge := func(k int) chunk.ID {
		id := key.Sum(parts[k])
		b := bytes.Clone(parts[k])
		b[7] ^= 0x80
		c.Forge(id, b)
		return id
	}
	x, y := forge(4), forge(9) // x: used by f01 and f03; y: only by f04, which part 10 breaks
	uses := [][]int{
		{0, 1, 2},
		{3, 4, 5},
		{6, 7},
		{4, 8},
		{9, 10, 11},
		{2, 1, 0},
	}
	files := craftFiles(t, c, parts, uses, map[int]bool{2: true})
	sn := c.Snapshot(c.Tree(files...))
	locs, err := tr.Locate("", []chunk.ID{x, y, files[4].Content[1]})
	if err != nil {
		t.Fatal(err)
	}
	z := locs[files[4].Content[1]]
	repotest.FlipByte(t, filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(z.Pack))), int64(z.Offset+z.Length/2))
	px, py := "pack "+repo.ShortHex(locs[x].Pack), "pack "+repo.ShortHex(locs[y].Pack)
	first := ""
	for range 3 {
		vds, err := verify.VerifySnapshots(ctx, tr.Repository, []chunk.ID{sn.ID}, verify.VerifyOptions{Level: verify.L2, Workers: 4, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		vd := vds[0]
		got := l2Findings(vd)
		packs := []string{
			"L2 " + px + ": data blob " + x.Short() + ": content does not match its ID",
			"L2 " + py + ": data blob " + y.Short() + ": content does not match its ID",
		}
		for _, p := range packs {
			if !slices.Contains(got, p) {
				t.Fatalf("no finding %q in\n%s", p, strings.Join(got, "\n"))
			}
		}
		// The files, in walk order, after the packs.
		wantFiles := []string{"L2 file f01: cannot be read whole: chunk " + x.Short(), "L2 file f02: content BLAKE3 ",
			"L2 file f03: cannot be read whole: chunk " + x.Short(), "L2 file f04: cannot be read whole: chunk " + y.Short()}
		var fileFindings []string
		for _, f := range got {
			if strings.HasPrefix(f, "L2 file ") {
				fileFindings = append(fileFindings, f)
			}
		}
		ok := len(fileFindings) == len(wantFiles) && len(got) == len(wantFiles)+3 // the flipped pack's finding too
		for i := 0; ok && i < len(wantFiles); i++ {
			ok = strings.HasPrefix(fileFindings[i], wantFiles[i]) && got[3+i] == fileFindings[i]
		}
		if !ok {
			t.Fatalf("L2 findings\n%s\nwant 3 pack findings, then files (prefixes)\n%s", strings.Join(got, "\n"), strings.Join(wantFiles, "\n"))
		}
		if vd.Figures["files_hashed"] != 2 {
			t.Errorf("%v files hashed, want 2", vd.Figures["files_hashed"])
		}
		if !slices.ContainsFunc(vd.Notes, func(n string) bool { return strings.Contains(n, "read again with every ID checked") }) {
			t.Errorf("no note of the second pass: %q", vd.Notes)
		}
		if text := verifytest.FindingsText(vd); first == "" {
			first = text
		} else if text != first {
			t.Fatalf("findings differ between runs:\n%s\nthen\n%s", first, text)
		}
	}
}

// A forged chunk that arrives before a file needs it is held, and with a
// tiny BufferBytes dropped and read again, with its ID checked, when the
// file gets to it: that failure is not in the stream where a pass that
// checked every ID makes it, so L2 runs again checking them all and the
// findings are those: the pack finding, then both files that use the
// chunk as broken (not one of them as a BLAKE3 mismatch).
func TestVerifyL2ForgedChunkReadAgainAfterEviction(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{PackSize: 256 << 10})
	c := repotest.NewCrafter(t, tr.Repository, "")
	a, x := repotest.RandomBytes(950, 30<<10), repotest.RandomBytes(951, 20<<10)
	id := tr.ChunkKey("").Sum(x)
	forged := bytes.Clone(x)
	forged[9] ^= 0x10
	c.Forge(id, forged)
	// x lies before a in their pack, so it is opened first, in the same
	// run: f01 waits for a, and x is held for it.
	files := craftFiles(t, c, [][]byte{a, x}, [][]int{{1}, {0, 1}}, nil)
	sn := c.Snapshot(c.Tree(files...))
	locs, err := tr.Locate("", []chunk.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	pack := "pack " + repo.ShortHex(locs[id].Pack)
	vds, err := verify.VerifySnapshots(ctx, tr.Repository, []chunk.ID{sn.ID}, verify.VerifyOptions{Level: verify.L2, Workers: 2, BufferBytes: 1, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got := l2Findings(vds[0])
	want := []string{"L2 " + pack + ": data blob " + id.Short() + ": content does not match its ID",
		"L2 file f00: cannot be read whole: chunk " + id.Short(), "L2 file f01: cannot be read whole: chunk " + id.Short()}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Fatalf("L2 findings\n%s\nwant (prefixes)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
