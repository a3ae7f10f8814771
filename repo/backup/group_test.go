package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/maintenance"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// writeGroupTree writes a tree of small files for the grouped-files tests:
// dirs directories of text and random files at and around the grouping
// limits (groupFileMin, groupFileMax, slotKept; the random ones of at most
// 256 bytes are stored alone), two identical files in
// each directory and one identical file across all of them. It returns the
// relative paths of the files to group and of those stored alone.
func writeGroupTree(t *testing.T, src string, dirs int) (grouped, alone []string) {
	t.Helper()
	sizes := []int{groupFileMin, 100, 1000, 4000, 9000, 20000, slotKept + 1, groupFileMax}
	for d := range dirs {
		dir := fmt.Sprintf("d%02d", d)
		for i, n := range sizes {
			text := bytes.Repeat([]byte(fmt.Sprintf("dir %d file %d: a line of a source file that compresses\n", d, i)), n/40+1)[:n]
			for _, f := range []struct {
				name string
				data []byte
			}{{fmt.Sprintf("t%d.go", i), text}, {fmt.Sprintf("r%d.bin", i), repotest.RandomBytes(uint64(d*100+i+1), n)}} {
				repotest.WriteFile(t, filepath.Join(src, dir, f.name), f.data, 0o644)
				if f.name[0] == 'r' && n <= 256 {
					// Random bytes this short are stored alone
					// (chunk.SplitSmallGrouped: their member frame
					// would cost more than grouping saves).
					alone = append(alone, dir+"/"+f.name)
					continue
				}
				grouped = append(grouped, dir+"/"+f.name)
			}
		}
		same := bytes.Repeat([]byte(fmt.Sprintf("twin of dir %d\n", d)), 50)
		repotest.WriteFile(t, filepath.Join(src, dir, "twin1.txt"), same, 0o644)
		repotest.WriteFile(t, filepath.Join(src, dir, "twin2.txt"), same, 0o644)
		repotest.WriteFile(t, filepath.Join(src, dir, "common.txt"), bytes.Repeat([]byte("the same everywhere\n"), 30), 0o644)
		grouped = append(grouped, dir+"/twin1.txt", dir+"/twin2.txt", dir+"/common.txt")
		for i, n := range []int{1, groupFileMin - 1, groupFileMax + 1, 300 << 10} {
			name := fmt.Sprintf("alone%d", i)
			repotest.WriteFile(t, filepath.Join(src, dir, name), repotest.RandomBytes(uint64(d*100+50+i), n), 0o644)
			alone = append(alone, dir+"/"+name)
		}
		// A WAL segment and a warm page file keep their own stored forms.
		repotest.WriteFile(t, filepath.Join(src, dir, "wal", "wal-1.log"), repotest.RandomBytes(uint64(d*100+60), 5000), 0o644)
		repotest.WriteFile(t, filepath.Join(src, dir, "warm", "warm_tier.dat"), repotest.RandomBytes(uint64(d*100+61), 5000), 0o644)
		alone = append(alone, dir+"/wal/wal-1.log", dir+"/warm/warm_tier.dat")
	}
	return grouped, alone
}

// blobFlagsOf returns the index flags of each file's one chunk, by relative
// path under the snapshot's top-level directory top.
func blobFlagsOf(t *testing.T, tr *repotest.Repo, r *repo.Repository, sn *repo.Snapshot, top string, rels []string) map[string]uint8 {
	t.Helper()
	out := map[string]uint8{}
	for _, rel := range rels {
		n := tr.NodeAt(t, sn, top+"/"+rel)
		if len(n.Content) != 1 {
			t.Fatalf("%s: %d chunks, want 1", rel, len(n.Content))
		}
		l, err := r.Locate("", n.Content)
		if err != nil {
			t.Fatal(err)
		}
		loc, ok := l[n.Content[0]]
		if !ok {
			t.Fatalf("%s: chunk %s in no pack", rel, n.Content[0].Short())
		}
		out[rel] = loc.Flags
	}
	return out
}

// distinctFiles counts the distinct contents of the non-empty files under
// dir: the chunks a first backup of it adds, every file being one chunk.
func distinctFiles(t *testing.T, dir string) uint64 {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if len(b) > 0 {
			seen[string(b)] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return uint64(len(seen))
}

// mustCheck runs check --read-data and fails the test on any finding.
func mustCheck(t *testing.T, r *repo.Repository) {
	t.Helper()
	rep, err := maintenance.Check(context.Background(), r, maintenance.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors() != 0 {
		t.Fatalf("check: %d errors: %+v", rep.Errors(), rep.Findings)
	}
}

// TestGroupedSmallFiles: in a repository of format 6 a path backup stores
// the small files it adds as members of group blobs (FlagMember in the
// index), except those too small or too large to group and Engram WAL and
// warm files; the snapshot restores byte for byte, from this process and
// from a new one; identical files are one chunk, stored once; a backup
// without a parent adds nothing and one with it stores nothing; check
// --read-data finds nothing. A dry run counts the same new chunks and
// bytes and writes no pack.
func TestGroupedSmallFiles(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	r := tr.Repository
	src := filepath.Join(t.TempDir(), "src")
	grouped, alone := writeGroupTree(t, src, 12)

	dry := mustBackup(t, r, BackupOptions{Paths: []string{src}, DryRun: true})
	if _, err := os.Stat(filepath.Join(tr.Dir, repo.DirData)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run: %s: %v, want no data directory", repo.DirData, err)
	}
	sn := mustBackup(t, r, BackupOptions{Paths: []string{src}})
	if d, s := dry.Summary, sn.Summary; d.NewChunks != s.NewChunks || d.NewBytes != s.NewBytes || d.Files != s.Files {
		t.Fatalf("dry run counted %d new chunks, %d new bytes, %d files; the backup %d, %d, %d", d.NewChunks, d.NewBytes, d.Files, s.NewChunks, s.NewBytes, s.Files)
	}
	if want := distinctFiles(t, src); sn.Summary.NewChunks != want {
		t.Fatalf("%d new chunks, want %d", sn.Summary.NewChunks, want)
	}

	flags := blobFlagsOf(t, tr, r, sn, "src", grouped)
	members := 0
	for _, rel := range grouped {
		if flags[rel]&repo.FlagMember != 0 {
			members++
		}
	}
	// An open group may end with one file, stored alone.
	if members < len(grouped)-openGroups() {
		t.Fatalf("%d of %d small files stored as members", members, len(grouped))
	}
	for rel, f := range blobFlagsOf(t, tr, r, sn, "src", alone) {
		if f&repo.FlagMember != 0 {
			t.Errorf("%s stored as a member, flags %#x", rel, f)
		}
	}
	for _, pair := range [][2]string{{"d03/twin1.txt", "d03/twin2.txt"}, {"d00/common.txt", "d11/common.txt"}} {
		a, b := tr.NodeAt(t, sn, "src/"+pair[0]), tr.NodeAt(t, sn, "src/"+pair[1])
		if a.Content[0] != b.Content[0] {
			t.Fatalf("%s and %s: chunks %s and %s", pair[0], pair[1], a.Content[0].Short(), b.Content[0].Short())
		}
	}

	want := repotest.DigestTree(t, src)
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, r, sn), "src")))
	fresh := tr.Reopen(t)
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, fresh, sn), "src")))
	mustCheck(t, fresh)

	again := mustBackup(t, fresh, BackupOptions{Paths: []string{src}, NoParent: true})
	if again.Root != sn.Root || again.Summary.NewChunks != 0 || again.Summary.StoredBytes > 8<<10 {
		t.Fatalf("backup without parent: root %s (first %s), %d new chunks, %d bytes stored", again.Root.Short(), sn.Root.Short(), again.Summary.NewChunks, again.Summary.StoredBytes)
	}
	same := mustBackup(t, fresh, BackupOptions{Paths: []string{src}})
	if s := same.Summary; s.UnchangedFiles != s.Files || s.StoredBytes != 0 || s.NewChunks != 0 {
		t.Fatalf("unchanged re-backup: %+v", s)
	}
}

// TestGroupedSmallFilesFormat5: a repository of format 5 gets the small
// files stored alone, as before format 6: no member in its index.
func TestGroupedSmallFilesFormat5(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	tr.SetFormat(t, 5)
	r := tr.Reopen(t)
	src := filepath.Join(t.TempDir(), "src")
	grouped, _ := writeGroupTree(t, src, 3)
	sn := mustBackup(t, r, BackupOptions{Paths: []string{src}})
	for rel, f := range blobFlagsOf(t, tr, r, sn, "src", grouped) {
		if f&repo.FlagMember != 0 {
			t.Fatalf("format 5: %s stored as a member, flags %#x", rel, f)
		}
	}
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, r, sn), "src")))
}

// TestGroupedSmallFilesCancelled: a backup cancelled halfway (some groups
// stored in packs already written, others open in the workers) records
// what it wrote and no member whose group it did not write: every chunk
// the index lists reads back; the next backup stores the rest, restores
// byte for byte and check --read-data finds nothing.
func TestGroupedSmallFilesCancelled(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{PackSize: 64 << 10})
	src := filepath.Join(t.TempDir(), "src")
	grouped, _ := writeGroupTree(t, src, 40)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Backup(ctx, tr.Repository, BackupOptions{Paths: []string{src}, BeforeDir: func(rel string) error {
		if rel == "src/d25" {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled backup: %v", err)
	}
	r := tr.Reopen(t)
	var ids []chunk.ID
	for _, rel := range grouped {
		data, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ChunkKey("").Sum(data))
	}
	locs, err := r.Locate("", ids) // what it did not store is not found
	if err != nil && !errors.Is(err, repo.ErrNotFound) {
		t.Fatal(err)
	}
	members := 0
	for id, l := range locs {
		if l.Flags&repo.FlagMember != 0 {
			members++
		}
		if _, err := r.ReadBlob(context.Background(), "", repo.DataBlob, id); err != nil {
			t.Fatalf("chunk %s (flags %#x) listed by the cancelled backup's index: %v", id.Short(), l.Flags, err)
		}
	}
	if members == 0 || len(locs) >= len(grouped)-40 {
		t.Fatalf("the cancelled backup recorded %d chunks of %d files, %d members: want some, not all", len(locs), len(grouped), members)
	}
	sn := mustBackup(t, r, BackupOptions{Paths: []string{src}})
	repotest.CompareTrees(t, repotest.DigestTree(t, src), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, r, sn), "src")))
	mustCheck(t, tr.Reopen(t))
}

// TestGroupedSmallFileSizeChanged: a small file of a format-6 repository
// that grew past the small-file buffer since it was listed is streamed, as
// before; one that grew or shrank within it is grouped as it was read.
// Every chunk reads back as the file's bytes once the groups are stored.
func TestGroupedSmallFileSizeChanged(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	pipe := chunk.NewPipeline(2, chunk.DefaultLevel)
	defer pipe.Close()
	r := tr.Repository
	a := &archiver{r: r, key: r.ChunkKey(""), pipe: pipe, params: r.Config().ParamSet(), known: map[chunk.ID]struct{}{},
		prog: &repo.Progress{}, packer: r.NewPacker(ctx, ""), sem: make(chan struct{}, 1)}
	a.startGroups(groupTarget, 1) // the files read whole go to one group
	dir := t.TempDir()
	slot := &smallSlot{}
	want := map[string][]byte{}
	nodes := map[string]*repo.Node{}
	// Grown: streamed from what was read (saveSmallFile), stored alone.
	// Shrunk or the same: grouped when of groupFileMin to groupFileMax bytes.
	for _, tt := range []struct{ listed, actual int }{
		{100, 100}, {100, 5000}, {100, groupFileMax + 1}, {10, 3 << 20}, {5000, 100}, {5000, 10}, {slotKept, 200 << 10}, {100, 0},
	} {
		name := fmt.Sprintf("f-%d-%d", tt.listed, tt.actual)
		p := filepath.Join(dir, name)
		data := bytes.Repeat([]byte(name+" grows\n"), tt.actual/10+1)[:tt.actual]
		repotest.WriteFile(t, p, data, 0o644)
		n := &repo.Node{Type: repo.NodeFile, Size: uint64(tt.listed)}
		if err := a.saveSmallFile(ctx, p, "x/"+name, n, chunk.ParamsDefault, slot); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n.Size != uint64(tt.actual) {
			t.Fatalf("%s: size %d", name, n.Size)
		}
		want[name], nodes[name] = data, n
	}
	open := 0
	for range cap(a.groups) {
		g := <-a.groups
		open += len(g.members)
		a.groups <- g
	}
	if open != 2 {
		t.Fatalf("%d files in the open groups, want the 2 read whole (not grown) of %d to %d bytes", open, groupFileMin, groupFileMax)
	}
	if err := a.storeOpenGroups(); err != nil {
		t.Fatal(err)
	}
	packs, _, err := a.packer.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	for name, n := range nodes {
		var got []byte
		for _, id := range n.Content {
			b, err := r.ReadBlob(ctx, "", repo.DataBlob, id)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got = append(got, b...)
		}
		if !bytes.Equal(got, want[name]) {
			t.Fatalf("%s: read back %d bytes, want %d", name, len(got), len(want[name]))
		}
		if len(n.Content) == 0 {
			continue
		}
		l, err := r.Locate("", n.Content[:1])
		if err != nil {
			t.Fatal(err)
		}
		if member := l[n.Content[0]].Flags&repo.FlagMember != 0; member != (name == "f-100-100" || name == "f-5000-100") {
			t.Errorf("%s: member %v", name, member)
		}
	}
}

// TestGroupEqualToAFileOfTheBackup: a group whose bytes equal a file this
// backup stored already (its ID is that file's) is not written: its files
// go whole. Written, the pack held the ID twice and check found its header
// and index disagreeing.
func TestGroupEqualToAFileOfTheBackup(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	pipe := chunk.NewPipeline(2, chunk.DefaultLevel)
	defer pipe.Close()
	r := tr.Repository
	a := &archiver{r: r, key: r.ChunkKey(""), pipe: pipe, params: r.Config().ParamSet(), known: map[chunk.ID]struct{}{},
		prog: &repo.Progress{}, packer: r.NewPacker(ctx, ""), sem: make(chan struct{}, 1)}
	a.startGroups(groupTarget, 1)
	x := bytes.Repeat([]byte("the first small file\n"), 20)
	y := bytes.Repeat([]byte("and the second one\n"), 30)
	xy := append(append([]byte{}, x...), y...)
	whole := a.key.Sum(xy)
	if !a.packer.Claim(whole) {
		t.Fatal("claim")
	}
	if err := a.packer.Add(repo.DataBlob, whole, 0, len(xy), xy); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	slot := &smallSlot{}
	var ids []chunk.ID
	for i, data := range [][]byte{x, y} {
		p := filepath.Join(dir, fmt.Sprint(i))
		repotest.WriteFile(t, p, data, 0o644)
		n := &repo.Node{Type: repo.NodeFile, Size: uint64(len(data))}
		if err := a.saveSmallFile(ctx, p, fmt.Sprint(i), n, chunk.ParamsDefault, slot); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.Content...)
	}
	if err := a.storeOpenGroups(); err != nil {
		t.Fatal(err)
	}
	packs, _, err := a.packer.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	for i, id := range append(ids, whole) {
		b, err := r.ReadBlob(ctx, "", repo.DataBlob, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := [][]byte{x, y, xy}[i]; !bytes.Equal(b, want) {
			t.Fatalf("blob %d: %d bytes, want %d", i, len(b), len(want))
		}
		l, err := r.Locate("", []chunk.ID{id})
		if err != nil {
			t.Fatal(err)
		}
		if l[id].Flags&repo.FlagMember != 0 {
			t.Errorf("blob %d stored as a member", i)
		}
	}
	mustCheck(t, r)
}
