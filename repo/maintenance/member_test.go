package maintenance

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
)

// groupFixture is a format-6 repository holding sn1, whose files are the
// members of two groups A and B written into one pack, and sn2, which
// lists only the first two files of group A.
type groupFixture struct {
	tr             *repotest.Repo
	sn1, sn2       *repo.Snapshot
	filesA, filesB [][]byte
	nodesA, nodesB []*repo.Node
	gA, gB         chunk.ID
}

func smallFileSet(prefix string, n int) (names []string, files [][]byte) {
	for i := range n {
		names = append(names, fmt.Sprintf("%s%d.py", prefix, i))
		files = append(files, []byte(strings.Repeat(fmt.Sprintf("def %s%d(x):\n    return x * %d\n", prefix, i, i), 20+i)))
	}
	return names, files
}

// blobErrors counts check's errors but those of crafted manifests, which
// record no sizes.
func blobErrors(rep *CheckReport) int {
	n := 0
	for _, fd := range rep.Findings {
		if fd.Severity == SevError && !strings.Contains(fd.Message, "sizes do not match the trees") {
			n++
		}
	}
	return n
}

func newGroupFixture(t *testing.T) *groupFixture {
	t.Helper()
	f := &groupFixture{tr: repotest.New(t, repo.InitOptions{})}
	if !f.tr.Config().GroupedFiles() {
		t.Fatalf("a new repository of format %d has no grouped files", f.tr.Config().Version)
	}
	namesA, filesA := smallFileSet("a", 6)
	namesB, filesB := smallFileSet("b", 6)
	f.filesA, f.filesB = filesA, filesB
	c := repotest.NewCrafter(t, f.tr.Repository, "")
	f.nodesA, f.gA = c.Group(namesA, filesA)
	f.nodesB, f.gB = c.Group(namesB, filesB)
	f.sn1 = c.Snapshot(c.Tree(append(append([]*repo.Node{}, f.nodesA...), f.nodesB...)...))
	c2 := repotest.NewCrafter(t, f.tr.Repository, "")
	f.sn2 = c2.Snapshot(c2.Tree(f.nodesA[0], f.nodesA[1]))
	return f
}

// TestGroupedFilesPruneRegroups: once sn1 is forgotten, group A's live
// files (sn2's two, a third of its plaintext) are below prune's share:
// a dry run says it would regroup them and changes nothing; prune writes
// them into a new group, and group A, group B and the other members are
// gone; check --read-data finds nothing and sn2 restores byte for byte;
// the next prune has nothing to do. Before regrouping, group A stayed
// whole for its two files.
func TestGroupedFilesPruneRegroups(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	if _, err := Forget(ctx, f.tr.Repository, ForgetOptions{IDs: []string{f.sn1.ID.String()}}); err != nil {
		t.Fatal(err)
	}
	live := int64(len(f.filesA[0]) + len(f.filesA[1]))
	before := repoFiles(t, f.tr.Repository)
	res, err := Prune(ctx, f.tr.Repository, PruneOptions{DryRun: true, MaxUnused: DefaultMaxUnused})
	if err != nil || res.GroupsRegrouped != 1 || res.BytesRegrouped != live {
		t.Fatalf("dry run: %v, %d groups regrouped (%d bytes), want 1 (%d)", err, res.GroupsRegrouped, res.BytesRegrouped, live)
	}
	if after := repoFiles(t, f.tr.Repository); after != before {
		t.Fatalf("the dry run changed the repository:\n%s\nafter:\n%s", before, after)
	}
	res, err = Prune(ctx, f.tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	if err != nil || res.PacksRepacked != 1 || res.GroupsRegrouped != 1 || res.BytesRegrouped != live {
		t.Fatalf("prune: %v, %d packs repacked, %d groups regrouped (%d bytes), want 1, 1 (%d)", err, res.PacksRepacked, res.GroupsRegrouped, res.BytesRegrouped, live)
	}
	r := f.tr.Reopen(t)
	g := baseOf(t, r, f.nodesA[0].Content[0])
	if g == f.gA || flags(t, r, g)&(repo.FlagMember|repo.FlagDelta) != 0 {
		t.Fatalf("member a0 after prune: in group %s (flags %#x), want a new group stored whole", g.Short(), flags(t, r, g))
	}
	for i, n := range f.nodesA[:2] {
		if fl := flags(t, r, n.Content[0]); fl != repo.FlagMember || baseOf(t, r, n.Content[0]) != g {
			t.Fatalf("member a%d after prune: flags %#x, want a member of the new group", i, fl)
		}
	}
	for _, id := range []chunk.ID{f.gA, f.gB, f.nodesB[0].Content[0], f.nodesA[2].Content[0]} {
		if _, err := r.Locate("", []chunk.ID{id}); err == nil {
			t.Fatalf("blob %s, used by sn1 only or regrouped, survived the prune", id.Short())
		}
	}
	rep, err := Check(ctx, r, CheckOptions{ReadData: true})
	if err != nil || blobErrors(rep) != 0 || rep.Figures["member_blobs_used"] != 2 {
		t.Fatalf("check --read-data after prune: %v %v %+v", err, rep.Figures["member_blobs_used"], rep.Findings)
	}
	dst := restoretest.Restore(t, r, f.sn2)
	for i, n := range f.nodesA[:2] {
		b, err := os.ReadFile(filepath.Join(dst, n.Name))
		if err != nil || !bytes.Equal(b, f.filesA[i]) {
			t.Fatalf("restored %s after prune: %v", n.Name, err)
		}
	}
	if res, err := Prune(ctx, r, PruneOptions{MaxUnused: DefaultMaxUnused}); err != nil || res.PacksDeleted+res.PacksRepacked+res.GroupsRegrouped != 0 {
		t.Fatalf("prune after a prune: %v %+v", err, res)
	}
}

// TestGroupedFilesPruneRegroupsInRepackedPack: a snapshot uses five of
// group A's six files (a0, 15 % of its plaintext, is dead) and group B is
// dead: prune with max unused 20 % repacks the pack (B) and, the pack
// being copied anyway, regroups A's five live files into a new group (until
// session 21, A was copied whole with its dead file: only a group whose
// own dead share exceeded max unused was regrouped); check --read-data
// clean, the snapshot restores byte for byte, the next prune does nothing.
func TestGroupedFilesPruneRegroupsInRepackedPack(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	c := repotest.NewCrafter(t, f.tr.Repository, "")
	sn := c.Snapshot(c.Tree(f.nodesA[1:]...))
	forgetAll(t, f.tr.Repository, f.sn1, f.sn2)
	var live int64
	for _, b := range f.filesA[1:] {
		live += int64(len(b))
	}
	res, err := Prune(ctx, f.tr.Repository, PruneOptions{MaxUnused: 0.2})
	if err != nil || res.PacksRepacked != 1 || res.GroupsRegrouped != 1 || res.BytesRegrouped != live {
		t.Fatalf("prune at 20 %%: %v, %d packs repacked, %d groups regrouped (%d bytes), want 1, 1 (%d)", err, res.PacksRepacked, res.GroupsRegrouped, res.BytesRegrouped, live)
	}
	r := f.tr.Reopen(t)
	g := baseOf(t, r, f.nodesA[1].Content[0])
	if g == f.gA {
		t.Fatal("group A survived its pack's repack: its dead file was copied with it")
	}
	for i, n := range f.nodesA[1:] {
		if fl := flags(t, r, n.Content[0]); fl != repo.FlagMember || baseOf(t, r, n.Content[0]) != g {
			t.Fatalf("member a%d after prune: flags %#x, want a member of the new group %s", i+1, fl, g.Short())
		}
	}
	for _, id := range []chunk.ID{f.gA, f.gB, f.nodesA[0].Content[0]} {
		if _, err := r.Locate("", []chunk.ID{id}); err == nil {
			t.Fatalf("blob %s, dead or regrouped, survived the prune", id.Short())
		}
	}
	if rep, err := Check(ctx, r, CheckOptions{ReadData: true}); err != nil || blobErrors(rep) != 0 {
		t.Fatalf("check --read-data after regrouping: %v %+v", err, rep.Findings)
	}
	dst := restoretest.Restore(t, r, sn)
	for i, n := range f.nodesA[1:] {
		b, err := os.ReadFile(filepath.Join(dst, n.Name))
		if err != nil || !bytes.Equal(b, f.filesA[i+1]) {
			t.Fatalf("restored %s after regrouping: %v", n.Name, err)
		}
	}
	if res, err := Prune(ctx, r, PruneOptions{MaxUnused: 0}); err != nil || res.PacksDeleted+res.PacksRepacked+res.GroupsRegrouped != 0 {
		t.Fatalf("prune after a prune: %v %+v", err, res)
	}
}

// TestGroupedFilesPruneLeavesGroupOfLivePack: group A (six files) shares
// its pack with a live 64 KiB file; a snapshot keeps a2..a5 and the file.
// A third of A's plaintext is dead, far above max unused 10 %, but A's
// dead bytes are a small share of its pack: prune copies nothing and A
// stays whole, its members naming it (until session 21, A was regrouped
// and its whole pack copied for it). Once the large file is dead too, the
// pack is repacked and A regrouped; check --read-data clean, restores byte
// for byte.
func TestGroupedFilesPruneLeavesGroupOfLivePack(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	names, files := smallFileSet("a", 6)
	big := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{3}).Read(big) // incompressible
	c := repotest.NewCrafter(t, tr.Repository, "")
	nodes, gA := c.Group(names, files)
	bigNode := c.File("big.bin", big)
	sn1 := c.Snapshot(c.Tree(append(append([]*repo.Node{}, nodes...), bigNode)...))
	c2 := repotest.NewCrafter(t, tr.Repository, "")
	sn2 := c2.Snapshot(c2.Tree(append(append([]*repo.Node{}, nodes[2:]...), bigNode)...))
	forgetAll(t, tr.Repository, sn1)
	before := repoFiles(t, tr.Repository)
	res, err := Prune(ctx, tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	if err != nil || res.PacksRepacked+res.PacksDeleted+res.GroupsRegrouped != 0 || res.BytesRepacked != 0 {
		t.Fatalf("prune of a mostly live pack: %v, %d packs repacked, %d deleted, %d groups regrouped, %d bytes copied; want nothing done",
			err, res.PacksRepacked, res.PacksDeleted, res.GroupsRegrouped, res.BytesRepacked)
	}
	var packsBefore, packsAfter []string
	for _, l := range strings.Split(before, "\n") {
		if len(l) > 0 && !strings.Contains(l, "index") {
			packsBefore = append(packsBefore, l)
		}
	}
	r := tr.Reopen(t)
	for _, l := range strings.Split(repoFiles(t, r), "\n") {
		if len(l) > 0 && !strings.Contains(l, "index") {
			packsAfter = append(packsAfter, l)
		}
	}
	if strings.Join(packsBefore, "\n") != strings.Join(packsAfter, "\n") {
		t.Fatalf("prune changed data/:\n%s\nafter:\n%s", strings.Join(packsBefore, "\n"), strings.Join(packsAfter, "\n"))
	}
	for i, n := range nodes[2:] {
		if fl := flags(t, r, n.Content[0]); fl != repo.FlagMember || baseOf(t, r, n.Content[0]) != gA {
			t.Fatalf("member a%d after prune: flags %#x, want a member of group A", i+2, fl)
		}
	}
	c3 := repotest.NewCrafter(t, r, "")
	sn3 := c3.Snapshot(c3.Tree(nodes[2:]...))
	forgetAll(t, r, sn2)
	res, err = Prune(ctx, r, PruneOptions{MaxUnused: DefaultMaxUnused})
	if err != nil || res.PacksRepacked != 1 || res.GroupsRegrouped != 1 {
		t.Fatalf("prune once the large file is dead: %v, %d packs repacked, %d groups regrouped; want 1, 1", err, res.PacksRepacked, res.GroupsRegrouped)
	}
	r = tr.Reopen(t)
	if _, err := r.Locate("", []chunk.ID{gA}); err == nil {
		t.Fatal("group A survived the repack of its pack")
	}
	if rep, err := Check(ctx, r, CheckOptions{ReadData: true}); err != nil || blobErrors(rep) != 0 {
		t.Fatalf("check --read-data after regrouping: %v %+v", err, rep.Findings)
	}
	dst := restoretest.Restore(t, r, sn3)
	for i, n := range nodes[2:] {
		b, err := os.ReadFile(filepath.Join(dst, n.Name))
		if err != nil || !bytes.Equal(b, files[i+2]) {
			t.Fatalf("restored %s after regrouping: %v", n.Name, err)
		}
	}
}

// repoFiles lists data/ and index/ with sizes.
func repoFiles(t *testing.T, r *repo.Repository) string {
	t.Helper()
	var sb strings.Builder
	for _, dir := range []string{repo.DirData, repo.DirIndex} {
		if err := r.Backend().List(context.Background(), dir, func(name string, size int64) error {
			fmt.Fprintf(&sb, "%s %d\n", name, size)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return sb.String()
}

// TestGroupedFilesCheckMissingGroup: check names a used member whose group
// is in no pack, and one whose group is only a member, with the chunk that
// cannot be read; the read path refuses them naming member and group.
func TestGroupedFilesCheckMissingGroup(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	r := f.tr.Repository
	key := r.ChunkKey("")
	lost, onMember := []byte("its group is lost\n"), []byte("its group is a member\n")
	lostID, onMemberID := key.Sum(lost), key.Sum(onMember)
	missing := key.Sum([]byte("a group no pack holds"))
	member := f.nodesA[3].Content[0]
	p := r.NewPacker(ctx, "")
	for _, b := range []struct {
		id    chunk.ID
		group chunk.ID
		n     int
	}{{lostID, missing, len(lost)}, {onMemberID, member, len(onMember)}} {
		frame := chunk.AppendMember(nil, chunk.Member{Group: b.group, Length: uint32(b.n)})
		if err := p.Add(repo.DataBlob, b.id, repo.FlagMember, b.n, frame); err != nil {
			t.Fatal(err)
		}
	}
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	c := repotest.NewCrafter(t, r, "")
	file := func(name string, id chunk.ID, b []byte) *repo.Node {
		h := repo.Hash(blake3.Sum256(b))
		return &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, Size: uint64(len(b)), BLAKE3: &h, MTimeNS: 1, Content: []chunk.ID{id}}
	}
	c.Snapshot(c.Tree(file("lost", lostID, lost), file("onmember", onMemberID, onMember)))
	rep, err := Check(ctx, f.tr.Reopen(t), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		id   chunk.ID
		want string
	}{
		{lostID, "group " + missing.Short() + " is in no pack: chunk " + lostID.Short() + " cannot be read"},
		{onMemberID, "group " + member.Short() + " is stored only as a delta or a member (it must be stored whole): chunk " + onMemberID.Short() + " cannot be read"},
	} {
		found := false
		for _, fd := range rep.Findings {
			if fd.What == "data blob "+w.id.Short() && fd.Message == w.want && fd.Severity == SevError {
				found = true
			}
		}
		if !found {
			t.Errorf("check findings lack %q:\n%+v", w.want, rep.Findings)
		}
	}
	_, err = f.tr.Reopen(t).ReadBlob(ctx, "", repo.DataBlob, lostID)
	if want := "data blob " + lostID.Short() + ": group " + missing.Short() + " is in no pack the index knows: not found"; err == nil || err.Error() != want {
		t.Fatalf("reading a member without its group: %v, want %q", err, want)
	}
}

// TestGroupedFilesRebuildIndex: an index rebuilt from the pack headers
// knows the members (their flag) and their groups (their frames), and sn1
// restores.
func TestGroupedFilesRebuildIndex(t *testing.T) {
	f := newGroupFixture(t)
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
	for _, n := range append(append([]*repo.Node{}, f.nodesA...), f.nodesB...) {
		want := f.gA
		if strings.HasPrefix(n.Name, "b") {
			want = f.gB
		}
		if fl := flags(t, r, n.Content[0]); fl != repo.FlagMember || baseOf(t, r, n.Content[0]) != want {
			t.Fatalf("%s after rebuild: flags %#x, want a member of group %s", n.Name, fl, want.Short())
		}
	}
	dst := restoretest.Restore(t, r, f.sn1)
	for i, n := range f.nodesB {
		if b, err := os.ReadFile(filepath.Join(dst, n.Name)); err != nil || !bytes.Equal(b, f.filesB[i]) {
			t.Fatalf("restored %s after an index rebuild: %v", n.Name, err)
		}
	}
}

// storeGroupAApart stores group A a second time, alone in a pack, and its
// members a second time in a pack of their own without it: the layout
// prune's repack and two writers can leave.
func (f *groupFixture) storeGroupAApart(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	r := f.tr.Repository
	var plain []byte
	for _, b := range f.filesA {
		plain = append(plain, b...)
	}
	stored, compressed := chunk.Compress(nil, plain, chunk.LevelFastest)
	if !compressed {
		t.Fatal("group A did not compress")
	}
	write := func(add func(p *repo.Packer)) {
		p := r.NewPacker(ctx, "")
		add(p)
		packs, _, err := p.Flush()
		if err != nil {
			t.Fatal(err)
		}
		if err := r.SaveIndex(ctx, packs); err != nil {
			t.Fatal(err)
		}
	}
	write(func(p *repo.Packer) {
		if err := p.Add(repo.DataBlob, f.gA, repo.FlagCompressed, len(plain), stored); err != nil {
			t.Fatal(err)
		}
	})
	write(func(p *repo.Packer) {
		off := 0
		for i, b := range f.filesA {
			frame := chunk.AppendMember(nil, chunk.Member{Group: f.gA, Offset: uint32(off), Length: uint32(len(b))})
			if err := p.Add(repo.DataBlob, f.nodesA[i].Content[0], repo.FlagMember, len(b), frame); err != nil {
				t.Fatal(err)
			}
			off += len(b)
		}
	})
}
