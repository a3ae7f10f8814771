package verify_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/verify"
	"memento/repo/verify/verifytest"
)

// craftFiles stores parts as chunks and returns file nodes made of them:
// files[i] holds the parts uses[i], in that order (a part may repeat, and
// several files share parts), with its true size and BLAKE3 unless wrong[i],
// where the recorded BLAKE3 is of other bytes (every chunk authentic).
func craftFiles(t *testing.T, c *repotest.Crafter, parts [][]byte, uses [][]int, wrong map[int]bool) []*repo.Node {
	ids := make([]chunk.ID, len(parts))
	for i, p := range parts {
		ids[i] = c.File("", p).Content[0]
	}
	var files []*repo.Node
	for i, u := range uses {
		h := blake3.New()
		n := &repo.Node{Name: fmt.Sprintf("f%02d", i), Type: repo.NodeFile, Mode: 0o644, MTimeNS: 1}
		for _, k := range u {
			h.Write(parts[k])
			n.Size += uint64(len(parts[k]))
			n.Content = append(n.Content, ids[k])
		}
		if wrong[i] {
			h.Write([]byte{0})
		}
		var sum repo.Hash
		h.Sum(sum[:0])
		n.BLAKE3 = &sum
		files = append(files, n)
	}
	return files
}

// L2 hashes each file on the goroutines that open its chunks, several runs
// at once; yet a file is hashed in its chunks' order, whatever opened first:
// every file of shared, repeated and interleaved chunks is proven; a file
// whose chunks are all authentic but whose recorded BLAKE3 is not theirs
// fails with its finding; a damaged chunk fails its pack and every file
// that uses it. The findings are the same, in the same order (files in walk
// order), run after run.
func TestVerifyL2ParallelHashingKeepsOrderAndFindings(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{PackSize: 256 << 10})
	c := repotest.NewCrafter(t, tr.Repository, "")
	var parts [][]byte
	for i := range 24 {
		parts = append(parts, repotest.RandomBytes(uint64(700+i), 40<<10+i*1000))
	}
	uses := [][]int{
		{0, 1, 2, 3, 4, 5, 6, 7},
		{8, 9, 10, 11},
		{12, 0, 12, 0, 12}, // repeats, and shares part 0 with f00
		{13, 14, 15, 16, 17},
		{18, 19, 20, 21, 22, 23},
		{5, 6, 7, 8, 9}, // parts of f00 and f01
		{1, 3, 5, 7, 9, 11, 13},
		{23, 22, 21, 20},
		{2, 4, 6, 16, 18},
		{10},
	}
	wrong := map[int]bool{3: true, 7: true}
	files := craftFiles(t, c, parts, uses, wrong)
	sn := c.Snapshot(c.Tree(files...))
	run := func() *verify.Verdict {
		t.Helper()
		vds, err := verify.VerifySnapshots(ctx, tr.Repository, []chunk.ID{sn.ID}, verify.VerifyOptions{Level: verify.L2, Workers: 4, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return vds[0]
	}
	wrongText := func(i int) string {
		h := blake3.New()
		for _, k := range uses[i] {
			h.Write(parts[k])
		}
		return fmt.Sprintf("L2 file f%02d: content BLAKE3 %s does not match the tree's", i, hex.EncodeToString(h.Sum(nil))[:16])
	}
	vd := run()
	if got, want := l2Findings(vd), []string{wrongText(3), wrongText(7)}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("authentic chunks: L2 findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if vd.Figures["files_hashed"] != 8 || vd.Figures["chunks_verified"] != 24 {
		t.Fatalf("figures %v, want 8 files hashed, 24 chunks", vd.Figures)
	}

	// Damage part 9: f01, f05 and f06 use it.
	locs, err := tr.Locate("", []chunk.ID{files[1].Content[1]})
	if err != nil {
		t.Fatal(err)
	}
	loc := locs[files[1].Content[1]]
	repotest.FlipByte(t, filepath.Join(tr.Dir, filepath.FromSlash(repo.PackName(loc.Pack))), int64(loc.Offset+loc.Length/2))
	id := files[1].Content[1].Short()
	pack := "pack " + repo.ShortHex(loc.Pack)
	broken := func(i int) string {
		return fmt.Sprintf("L2 file f%02d: cannot be read whole: chunk %s: %s: data blob %s at offset %d: ", i, id, pack, id, loc.Offset)
	}
	first := ""
	for range 4 {
		vd := run()
		got := l2Findings(vd)
		want := []string{"L2 " + pack + ": data blob " + id + " at offset", broken(1), wrongText(3), broken(5), broken(6), wrongText(7)}
		ok := len(got) == len(want)
		for i := 0; ok && i < len(want); i++ {
			ok = strings.HasPrefix(got[i], want[i])
		}
		if !ok {
			t.Fatalf("damaged chunk: L2 findings\n%s\nwant (prefixes)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if vd.Figures["files_hashed"] != 5 {
			t.Fatalf("damaged chunk: %v files hashed, want 5", vd.Figures["files_hashed"])
		}
		if text := verifytest.FindingsText(vd); first == "" {
			first = text
		} else if text != first {
			t.Fatalf("findings differ between runs:\n%s\nthen\n%s", first, text)
		}
	}
}

// l2Findings are a verdict's L2 findings as text, in order.
func l2Findings(vd *verify.Verdict) []string {
	var out []string
	for _, f := range vd.Findings {
		if f.Level == verify.L2 {
			out = append(out, f.String())
		}
	}
	return out
}
