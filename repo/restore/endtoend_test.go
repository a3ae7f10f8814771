package restore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"memento/chunk"
	"memento/repo"
	"memento/repo/directio"
	"memento/repo/repotest"
)

// forgedRepo is a repository holding a validly sealed chunk whose content
// is not what its ID names (repotest.Crafter.Forge), used by a small file
// and a large one, as the tree names say; with copy a true copy of the
// chunk is in another pack, after the forged one in the index.
type forgedRepo struct {
	tr         *repotest.Repo
	sn         *repo.Snapshot
	id         chunk.ID
	forgedPack string
	want       map[string][]byte // the files' true content
	logs       *repotest.LogBuffer
	r          *repo.Repository // reopened with logs
}

func newForgedRepo(t *testing.T, names []string, copy bool) *forgedRepo {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{})
	c := repotest.NewCrafter(t, tr.Repository, "")
	good := repotest.RandomBytes(31, 20000)
	forged := bytes.Clone(good)
	forged[len(forged)/2] ^= 0x01 // the same length: only the ID check or the file's BLAKE3 sees it
	id := tr.ChunkKey("").Sum(good)
	c.Forge(id, forged)
	head, tail := repotest.RandomBytes(32, 3000), repotest.RandomBytes(33, directio.MinSize)
	parts := map[string][][]byte{
		"large": {tail, good, head}, // O_DIRECT, read ahead
		"ok":    {head, tail},
		"small": {head, good}, // gathered before it is written
	}
	fx := &forgedRepo{tr: tr, id: id, want: map[string][]byte{}, logs: &repotest.LogBuffer{}}
	var nodes []*repo.Node
	slices.Sort(names) // a tree's order
	for _, name := range names {
		nodes = append(nodes, c.Chunks(name, parts[name]...))
		fx.want[name] = bytes.Join(parts[name], nil)
	}
	fx.sn = c.Snapshot(c.Tree(nodes...))
	if copy {
		c.Copy(good)
	}
	fx.r = tr.ReopenWith(t, repo.Options{Logger: fx.logs.Logger()})
	locs, err := fx.r.Index().LookupAll(repo.StorageSpace(""), []chunk.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	first, err := fx.r.Locate("", []chunk.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(locs[id]); n != map[bool]int{false: 1, true: 2}[copy] || first[id] != locs[id][0] {
		t.Fatalf("setup: chunk %s has locations %+v, Locate gives %+v", id.Short(), locs[id], first[id])
	}
	fx.forgedPack = repo.ShortHex(first[id].Pack)
	return fx
}

// TestRestoreForgedChunkRefusedAsBefore: restore reads a file's chunks
// without their ID check (its BLAKE3 checks them all) and, when the file
// does not match, reads it again with every ID checked: a chunk whose
// content is not its ID's, in no other copy, fails the restore with the one
// error a restore that checked every chunk gives (naming the file, the pack
// and the chunk; a corruption: exit 5), small file or large, and leaves
// nothing behind.
func TestRestoreForgedChunkRefusedAsBefore(t *testing.T) {
	for _, name := range []string{"large", "small"} {
		t.Run(name, func(t *testing.T) {
			fx := newForgedRepo(t, []string{name, "ok"}, false)
			err := WantRestoreRefused(t, fx.r, fx.sn, "file "+name)
			want := "snapshot " + fx.sn.ShortID() + ": file " + name + ": pack " + fx.forgedPack + ": data blob " + fx.id.Short() + ": content does not match its ID"
			if err.Error() != want {
				t.Errorf("restore error\n%s\nwant\n%s", err, want)
			}
			if !strings.Contains(fx.logs.String(), "reading it again with every chunk's ID checked") {
				t.Errorf("no warning of the slow path:\n%s", fx.logs.String())
			}
		})
	}
}

// TestRestoreForgedChunkRepairedFromCopy: the forged chunk, shared by a
// large and a small file, has a true copy in another pack: each file fails
// its BLAKE3 on the fast path, is read again with every ID checked, the
// fallback takes the copy and says which pack it replaced, as for damage at
// rest, and every file comes back byte-exact.
func TestRestoreForgedChunkRepairedFromCopy(t *testing.T) {
	fx := newForgedRepo(t, []string{"large", "ok", "small"}, true)
	dst := filepath.Join(t.TempDir(), "restored")
	res, err := Restore(context.Background(), fx.r, fx.sn, dst, RestoreOptions{})
	if err != nil {
		t.Fatalf("restore with a forged first copy: %v\n%s", err, fx.logs.String())
	}
	for name, want := range fx.want {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want %d, equal=%v", name, len(got), err, len(want), bytes.Equal(got, want))
		}
	}
	if res.Files != 3 || res.Bytes != uint64(len(fx.want["large"])+len(fx.want["ok"])+len(fx.want["small"])) {
		t.Errorf("result: %d files, %d bytes", res.Files, res.Bytes)
	}
	var replaced, slow int
	for _, l := range strings.Split(fx.logs.String(), "\n") {
		if strings.Contains(l, "restore: damaged blob replaced by another copy") && strings.Contains(l, "pack="+fx.forgedPack) &&
			strings.Contains(l, "blob="+fx.id.Short()) && strings.Contains(l, "content does not match its ID") {
			replaced++
		}
		if strings.Contains(l, "reading it again with every chunk's ID checked") {
			slow++
		}
	}
	if replaced != 2 || slow != 2 {
		t.Errorf("%d warnings of a replaced blob and %d of the slow path, want 2 and 2 (one per file):\n%s", replaced, slow, fx.logs.String())
	}
}
