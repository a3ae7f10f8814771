package repo_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// testdata/repo-format6-group was written once by the first binary of
// repository format 6: one path snapshot of 40 small text files and 4
// small random ones (members of group blobs, the
// pack size 256 KiB making groups of 64 KiB), a file of 40 bytes and one
// of 287 KiB (stored alone). The test restores it byte for byte and checks
// that the small files' chunks are members whose groups read whole. Never
// regenerated; regenerate only when deliberately starting it with
//
//	go test ./repo -run 'TestGoldenRepositoryFormat6Group$' -update-golden
func TestGoldenRepositoryFormat6Group(t *testing.T) {
	golden := filepath.Join("testdata", "repo-format6-group")
	if *updateGolden {
		r := newGoldenRepo(t, golden, false)
		src := filepath.Join(t.TempDir(), "src")
		mtime := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
		write := func(name string, b []byte) {
			p := filepath.Join(src, filepath.FromSlash(name))
			repotest.WriteFile(t, p, b, 0o644)
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 40 {
			write(fmt.Sprintf("pkg%d/f%02d.go", i%3, i), []byte(strings.Repeat(fmt.Sprintf("func f%d(x int) int { return x * %d }\n", i, i+1), 20+7*i)))
		}
		for i := range 4 {
			write(fmt.Sprintf("bin/r%d.bin", i), repotest.RandomBytes(uint64(600+i), 3000+1000*i))
		}
		write("tiny.txt", []byte("a file of forty bytes, stored alone...\n\n"))
		write("big.dat", bytes.Repeat([]byte("a line of a file too large to be grouped\n"), 7000))
		sn := backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{src}, Host: "golden"})
		finishGolden(t, golden, goldenDigest{sn.ID.String(): restoredDigest(t, sn, restoretest.Restore(t, r, sn))})
	}
	src := filepath.Join(golden, "repo")
	cfg, err := os.ReadFile(filepath.Join(src, "config"))
	if err != nil || !bytes.Contains(cfg, []byte(`"version": 6,`)) {
		t.Fatalf("golden config is not of format 6 (%v):\n%s", err, cfg)
	}
	want := loadGoldenDigest(t, golden)
	r := openGoldenCopy(t, src)
	ctx := context.Background()
	sns, err := r.Snapshots(ctx)
	if err != nil || len(sns) != 1 || len(want) != 1 {
		t.Fatalf("%d snapshots, %d digests: %v", len(sns), len(want), err)
	}
	sn := sns[0]
	w, ok := want[sn.ID.String()]
	if !ok {
		t.Fatalf("snapshot %s is not in digest.json", sn.ID)
	}
	repotest.CompareTrees(t, w, restoredDigest(t, sn, restoretest.Restore(t, r, sn)))
	// Every small file is a member (or a group of one); each group reads.
	var ids []chunk.ID
	var walk func(id chunk.ID)
	walk = func(id chunk.ID) {
		tr, err := r.LoadTree(ctx, sn.Space, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tr.Nodes {
			if n.Subtree != nil {
				walk(*n.Subtree)
			}
			if n.Type == repo.NodeFile && n.Size >= 64 && n.Size <= 256<<10 {
				ids = append(ids, n.Content...)
			}
		}
	}
	walk(sn.Root)
	locs, err := r.Locate("", ids)
	if err != nil {
		t.Fatal(err)
	}
	var members []chunk.ID
	var mlocs []index.Location
	for _, id := range ids {
		if locs[id].Flags == repo.FlagMember {
			members = append(members, id)
			mlocs = append(mlocs, locs[id])
		}
	}
	if len(ids) != 44 || len(members) < 40 {
		t.Fatalf("%d small files, %d members: want 44 and nearly all members", len(ids), len(members))
	}
	groups, errs := r.RefTargets(ctx, "", members, mlocs)
	seen := map[chunk.ID]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if seen[groups[i]] {
			continue
		}
		seen[groups[i]] = true
		if _, err := r.ReadBlob(ctx, "", repo.DataBlob, groups[i]); err != nil {
			t.Fatalf("group %s: %v", groups[i].Short(), err)
		}
	}
	if len(seen) < 2 {
		t.Fatalf("%d groups, want several", len(seen))
	}
}
