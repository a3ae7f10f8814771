package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
)

// TestTreesStoredAtTheFastestLevel: a backup stores a tree blob as
// chunk.CompressFastest stores its JSON (one zstd frame at the fastest
// level), not at the balanced level the text rule picks for text.
func TestTreesStoredAtTheFastestLevel(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	for i := range 300 {
		repotest.WriteFile(t, filepath.Join(src, fmt.Sprintf("a-longer-file-name-%04d-%s.txt", i, strings.Repeat("x", i%40))), []byte(fmt.Sprint(i)), 0o644)
	}
	// A file stored raw: its stored length less its raw length is what
	// sealing adds to a blob.
	repotest.WriteFile(t, filepath.Join(src, "random"), repotest.RandomBytes(7, 1000), 0o644)
	sn := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	ctx := context.Background()
	root, err := tr.LoadTree(ctx, "", sn.Root)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := tr.LoadTree(ctx, "", *root.Nodes[0].Subtree)
	if err != nil {
		t.Fatal(err)
	}
	var random chunk.ID
	for _, n := range dir.Nodes {
		if n.Name == "random" {
			random = n.Content[0]
		}
	}
	locs, err := tr.Locate("", []chunk.ID{*root.Nodes[0].Subtree, random})
	if err != nil {
		t.Fatal(err)
	}
	overhead := int(locs[random].Length) - int(locs[random].RawLength)
	b, err := repo.EncodeTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	fastest, _ := chunk.CompressFastest(nil, b)
	balanced, _ := chunk.Compress(nil, b, chunk.DefaultLevel)
	if len(fastest) == len(balanced) {
		t.Fatalf("the tree compresses to %d bytes at both levels: the test cannot tell them apart", len(fastest))
	}
	if got := int(locs[*root.Nodes[0].Subtree].Length) - overhead; got != len(fastest) {
		t.Errorf("tree of %d bytes stored in %d, want %d (fastest level; balanced: %d)", len(b), got, len(fastest), len(balanced))
	}
}
