package backup

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// TestLargeTreeBlob: a directory whose tree JSON is larger than the largest
// data chunk (chunk.MaxChunkSize, 8 MiB) must back up and restore. Such trees
// are ordinary: a directory of ~50,000 files, or a multi-GiB warm page file
// cut into 32 KiB chunks, lists that many bytes of chunk IDs. Long symlink
// targets make one cheaply here.
func TestLargeTreeBlob(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.Mkdir(t, src, 0o755)
	target := strings.Repeat("long/", 800) // 4000 bytes, below PATH_MAX
	const links = 2300                     // about 9.3 MB of tree JSON
	for i := range links {
		if err := os.Symlink(target+strconv.Itoa(i), filepath.Join(src, "l"+strconv.Itoa(100000+i))); err != nil {
			t.Fatal(err)
		}
	}
	sn := mustBackup(t, tr.Repository, BackupOptions{Paths: []string{src}})
	n := tr.NodeAt(t, sn, "src")
	locs, err := tr.Locate("", []chunk.ID{*n.Subtree})
	if err != nil {
		t.Fatal(err)
	}
	if raw := locs[*n.Subtree].RawLength; raw <= 8<<20 {
		t.Fatalf("tree of %d bytes: the test wants one above 8 MiB", raw)
	}
	want := repotest.DigestTree(t, src)
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "src")))
}
