package fusefs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// TestMountReadsSecondCopy: two backups that did not know of each other
// stored the same chunks in two packs. With the first copy of a chunk
// damaged, the mount serves the file whole from the second copy and logs a
// warning naming the damaged pack, where it used to answer EIO.
func TestMountReadsSecondCopy(t *testing.T) {
	requireFUSE(t)
	tr, dd, sn := spaceFixture(t)
	rel := "spaces/" + testSpace + "/warm/warm_tier.dat"

	// A second backup that cannot see the first one's index files (as two
	// hosts backing up at once) stores every chunk again, in other packs.
	idx := filepath.Join(tr.Dir, "index")
	hidden := filepath.Join(t.TempDir(), "index")
	if err := os.Rename(idx, hidden); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(idx, 0o755); err != nil {
		t.Fatal(err)
	}
	other := &repotest.Repo{Dir: tr.Dir, Cache: filepath.Join(t.TempDir(), "cache2"), Backend: tr.Backend}
	other.Repository = other.Reopen(t)
	backuptest.Backup(t, other.Repository, backup.BackupOptions{Space: testSpace, DataDir: dd, Host: "host-a"})
	entries, err := os.ReadDir(hidden)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(hidden, e.Name()), filepath.Join(idx, e.Name())); err != nil {
			t.Fatal(err)
		}
	}

	// A handle with a fresh cache knows both index files.
	both := &repotest.Repo{Dir: tr.Dir, Cache: filepath.Join(t.TempDir(), "cache3"), Backend: tr.Backend}
	both.Repository = both.Reopen(t)
	n := fileNodeOf(t, both.Repository, sn, rel)
	victim := n.Content[len(n.Content)/2]
	all, err := both.Index().LookupAll(testSpace, []chunk.ID{victim})
	if err != nil {
		t.Fatal(err)
	}
	locs := all[victim]
	if len(locs) != 2 || locs[0].Pack == locs[1].Pack {
		t.Fatalf("setup: chunk %s has locations %+v, want two packs", victim.Short(), locs)
	}
	first, err := both.Locate(testSpace, []chunk.ID{victim})
	if err != nil || first[victim] != locs[0] {
		t.Fatalf("setup: Locate gives %+v (%v), LookupAll %+v first", first[victim], err, locs[0])
	}
	h := fmt.Sprintf("%x", locs[0].Pack)
	pack := filepath.Join(tr.Dir, "data", h[:2], h)
	if err := os.Chmod(pack, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(pack, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(locs[0].Offset) + int64(locs[0].Length)/2
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, mp, logs := mount(t, both.Repository, Options{})
	want, err := os.ReadFile(filepath.Join(dd, rel))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(mp, "snapshots", sn.ShortID(), rel))
	if err != nil {
		t.Fatalf("read through the mount with a damaged first copy: %v\nlog:\n%s", err, logs.String())
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read through the mount: %d bytes, want %d, equal=%v", len(got), len(want), bytes.Equal(got, want))
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "damaged blob replaced by another copy") {
			line = l
			break
		}
	}
	if !contains(line, "pack="+repo.ShortHex(locs[0].Pack), "copy="+repo.ShortHex(locs[1].Pack), "blob="+victim.Short()) {
		t.Errorf("log line %q does not name the damaged pack %s, the copy %s and blob %s\nlog:\n%s",
			line, repo.ShortHex(locs[0].Pack), repo.ShortHex(locs[1].Pack), victim.Short(), logs.String())
	}
	if strings.Contains(logs.String(), "read failed") {
		t.Errorf("a read failed:\n%s", logs.String())
	}
}
