package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"memento/chunk"
	"memento/index"
	"memento/repo/slabmem"
)

// smallFiles returns n small files of different lengths and contents, and
// their concatenation (a group's plaintext).
func smallFiles(n int) (files [][]byte, group []byte) {
	for i := range n {
		f := []byte(strings.Repeat(fmt.Sprintf("small file %d line\n", i), 3+i*7))
		files = append(files, f)
		group = append(group, f...)
	}
	return files, group
}

// addGroup writes files as a compressed group blob and its members into one
// pack of the default space (Packer.AddGroup), saves its index, and
// returns the group's ID and the members' IDs.
func addGroup(t *testing.T, tr *testRepo, files [][]byte) (chunk.ID, []chunk.ID) {
	t.Helper()
	ctx := context.Background()
	key := tr.ChunkKey("")
	var plain []byte
	var members []GroupMember
	var ids []chunk.ID
	for _, f := range files {
		id := key.Sum(f)
		members = append(members, GroupMember{ID: id, Offset: uint32(len(plain)), Length: uint32(len(f))})
		ids = append(ids, id)
		plain = append(plain, f...)
	}
	gid := key.Sum(plain)
	stored, compressed := chunk.Compress(nil, plain, chunk.LevelFastest)
	if !compressed {
		t.Fatal("group did not compress")
	}
	p := tr.NewPacker(ctx, "")
	if err := p.AddGroup(gid, FlagCompressed, len(plain), stored, members); err != nil {
		t.Fatal(err)
	}
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != 1 || len(packs[0].Blobs) != 1+len(files) || packs[0].Blobs[0].ID != gid {
		t.Fatalf("AddGroup wrote %d packs, want one with the group first and its %d members", len(packs), len(files))
	}
	if err := tr.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	return gid, ids
}

// TestMemberReadPath: the members of a group read back as their files
// through ReadBlob and StreamBlobs (fresh, pooled, borrowed; the heap's
// buffers and a Mem's; Stored gives their frames), their group is read
// once for all of them (groupCache), and the group reads as itself.
func TestMemberReadPath(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	files, plain := smallFiles(6)
	gid, ids := addGroup(t, tr, files)
	want := map[chunk.ID][]byte{gid: plain}
	for i, id := range ids {
		want[id] = files[i]
	}
	// A stream of a pack's blobs in order (check --read-data) decodes the
	// group once, before its members, which find it cached.
	err := tr.StreamBlobs(ctx, "", DataBlob, append([]chunk.ID{gid}, ids...), StreamOptions{Buffer: BufferBorrowed}, func(b StreamBlob) error {
		if b.Err != nil || !bytes.Equal(b.Data, want[b.ID]) {
			t.Errorf("blob %s: %v", b.ID.Short(), b.Err)
		}
		return nil
	})
	if _, hits, misses, _ := tr.groups.Stats(); err != nil || misses != 1 || hits != int64(len(ids)) {
		t.Fatalf("stream of a group and its members: %v, the group cached %d times and found %d times for %d members, want once and every time", err, misses, hits, len(ids))
	}
	tr.groups = newGroupCache(groupCacheIdle)
	for i, id := range ids {
		got, err := tr.ReadBlob(ctx, "", DataBlob, id)
		if err != nil || !bytes.Equal(got, files[i]) {
			t.Fatalf("ReadBlob of member %d: %v", i, err)
		}
	}
	if n := groupLoads(tr); n != 1 {
		t.Fatalf("the group was read %d times for %d members, want once", n, len(ids))
	}
	all := append([]chunk.ID{gid}, ids...)
	all = append(all, ids[2], ids[0]) // again, out of order
	for _, buf := range []BufferPolicy{BufferFresh, BufferPooled, BufferBorrowed} {
		for _, m := range []*slabmem.Mem{nil, slabmem.New()} {
			n := 0
			err := tr.StreamBlobs(ctx, "", DataBlob, all, StreamOptions{Buffer: buf, Ahead: 1 << 20, Workers: 2, Mem: m}, func(b StreamBlob) error {
				if b.Err != nil || !bytes.Equal(b.Data, want[b.ID]) {
					t.Errorf("buffer %d: blob %s: %v", buf, b.ID.Short(), b.Err)
				}
				if buf == BufferPooled {
					PutPooled(m, b.Pooled)
				} else if buf == BufferFresh {
					m.Put(b.Data)
				}
				n++
				return nil
			})
			if err != nil || n != len(all) {
				t.Fatalf("buffer %d: %v, %d blobs", buf, err, n)
			}
			if k := m.Out(); k != 0 {
				t.Fatalf("buffer %d: %d buffers of the Mem not given back", buf, k)
			}
			m.Release()
		}
	}
	// RefTargets: the frames of one pack, asked for out of order and
	// twice, read in runs, each answer in its place.
	locs, err := tr.Locate("", ids)
	if err != nil {
		t.Fatal(err)
	}
	ask := []chunk.ID{ids[5], ids[0], ids[3], ids[0], gid}
	var ls []index.Location
	for _, id := range ask {
		ls = append(ls, locs[id])
	}
	gl, err := tr.Locate("", []chunk.ID{gid})
	if err != nil {
		t.Fatal(err)
	}
	ls[4] = gl[gid]
	groups, errs := tr.RefTargets(ctx, "", ask, ls)
	for i := range 4 {
		if errs[i] != nil || groups[i] != gid {
			t.Fatalf("RefTargets %d: %s %v, want %s", i, groups[i].Short(), errs[i], gid.Short())
		}
	}
	if want := "data blob " + gid.Short() + ": not a delta or member blob (flags 0x01, pack " + ShortHex(ls[4].Pack) + ")"; errs[4] == nil || errs[4].Error() != want {
		t.Fatalf("RefTargets of the group: %v, want %q", errs[4], want)
	}
	// Stored: each member's frame, once verified.
	err = tr.StreamBlobs(ctx, "", DataBlob, ids, StreamOptions{Stored: true}, func(b StreamBlob) error {
		i := 0
		for ids[i] != b.ID {
			i++
		}
		off := 0
		for _, f := range files[:i] {
			off += len(f)
		}
		frame := chunk.AppendMember(nil, chunk.Member{Group: gid, Offset: uint32(off), Length: uint32(len(files[i]))})
		if b.Err != nil || !bytes.Equal(b.Data, frame) {
			t.Errorf("stored member %d: %v, %x, want %x", i, b.Err, b.Data, frame)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMemberReadPathRefuses: a member whose group no pack holds, whose
// slice lies past its group's end, whose frame has another version, whose
// length is not the index's, whose bytes are not its ID, whose group is
// only a member, that is its own group, or that is flagged compressed too,
// is refused with a CorruptError naming the member, the group or the pack.
func TestMemberReadPathRefuses(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	key := tr.ChunkKey("")
	files, plain := smallFiles(3)
	gid, ids := addGroup(t, tr, files)
	frame := func(g chunk.ID, off, n int) []byte {
		return chunk.AppendMember(nil, chunk.Member{Group: g, Offset: uint32(off), Length: uint32(n)})
	}
	noGroup, past, badVersion := key.Sum([]byte("no group")), key.Sum([]byte("past")), key.Sum([]byte("v2"))
	short, wrongID, ofMember := key.Sum([]byte("short")), key.Sum([]byte("wrong")), key.Sum(files[0][:3])
	self, compressed := key.Sum([]byte("self")), key.Sum([]byte("compressed"))
	missing := chunk.ID{9}
	v2 := frame(gid, 0, 10)
	v2[0] = 2
	packDataBlobs(t, tr, []dataBlob{
		{noGroup, FlagMember, 10, frame(missing, 0, 10)},
		{past, FlagMember, 10, frame(gid, len(plain)-5, 10)},
		{badVersion, FlagMember, 10, v2},
		{short, FlagMember, 5, frame(gid, 0, 10)},
		{wrongID, FlagMember, 10, frame(gid, 0, 10)},
		{ofMember, FlagMember, 3, frame(ids[0], 0, 3)}, // ids[0] is only a member
		{self, FlagMember, 10, frame(self, 0, 10)},
		{compressed, FlagMember | FlagCompressed, 10, frame(gid, 0, 10)},
	})
	pk := func(id chunk.ID) string {
		l, err := tr.Locate("", []chunk.ID{id})
		if err != nil {
			t.Fatal(err)
		}
		return ShortHex(l[id].Pack)
	}
	for _, c := range []struct {
		id   chunk.ID
		want string
	}{
		{noGroup, "data blob " + noGroup.Short() + ": group " + missing.Short() + " is in no pack the index knows: not found"},
		{past, fmt.Sprintf("data blob %s: member at %d+10 of group %s of %d bytes (pack %s)", past.Short(), len(plain)-5, gid.Short(), len(plain), pk(past))},
		{badVersion, "data blob " + badVersion.Short() + ": member frame in pack " + pk(badVersion) + ": member frame version 2 (this binary reads 1): chunk: corrupt stored data"},
		{short, "data blob " + short.Short() + ": member of 10 bytes, index says 5 (pack " + pk(short) + ")"},
		{wrongID, "pack " + pk(wrongID) + ": data blob " + wrongID.Short() + ": content does not match its ID"},
		{ofMember, "data blob " + ofMember.Short() + ": group " + ids[0].Short() + " is itself a delta or a member (it must be stored whole)"},
		{self, "data blob " + self.Short() + ": member of itself (pack " + pk(self) + ")"},
		{compressed, "data blob " + compressed.Short() + ": member flag on a data blob with flags 0x05 (pack " + pk(compressed) + ")"},
	} {
		_, err := tr.ReadBlob(ctx, "", DataBlob, c.id)
		var ce *CorruptError
		if !errors.As(err, &ce) || err.Error() != c.want {
			t.Errorf("blob %s: %v, want a CorruptError %q", c.id.Short(), err, c.want)
		}
	}
	// A failed group read is not cached: once the group is there, its
	// member reads.
	before := groupLoads(tr)
	if _, err := tr.ReadBlob(ctx, "", DataBlob, noGroup); err == nil || groupLoads(tr) != before+1 {
		t.Fatalf("a missing group again: %v, %d loads, want an error and one more load", err, groupLoads(tr)-before)
	}
}

// TestGroupCacheBound: a Repository's group cache holds at most
// groupCacheBytes, least recently used out first, and keeps no failed
// load (its merging of concurrent loads is repo/lru's, tested there).
func TestGroupCacheBound(t *testing.T) {
	ctx := context.Background()
	c := newGroupCache(groupCacheIdle)
	big := groupCacheBytes / 4
	for i := range 6 {
		if _, err := c.Get(ctx, groupKey{"s", chunk.ID{byte(10 + i)}}, func() ([]byte, error) { return make([]byte, big), nil }); err != nil {
			t.Fatal(err)
		}
		if i == 2 { // touch the first: the second is then the oldest
			c.Get(ctx, groupKey{"s", chunk.ID{10}}, nil)
		}
	}
	first, second := c.Contains(groupKey{"s", chunk.ID{10}}), c.Contains(groupKey{"s", chunk.ID{11}})
	if used, _, _, _ := c.Stats(); used > groupCacheBytes || !first || second {
		t.Fatalf("cache holds %d bytes (bound %d), first group kept %v, second %v: want within the bound, the recently used one kept", used, groupCacheBytes, first, second)
	}
	n := 0
	fail := errors.New("read failed")
	for range 2 {
		_, err := c.Get(ctx, groupKey{"s", chunk.ID{2}}, func() ([]byte, error) { n++; return nil, fail })
		if err != fail {
			t.Fatalf("get of a failing group: %v", err)
		}
	}
	if n != 2 {
		t.Fatalf("a failed load was kept: %d loads for 2 gets", n)
	}
}

// TestGroupCacheReleasedWhenIdle: a Repository keeps no decoded group once
// no member was read for its idle time (a long-lived agent between its
// verifications), nor once closed; a member read afterwards reads its group
// again.
func TestGroupCacheReleasedWhenIdle(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	files, _ := smallFiles(4)
	_, ids := addGroup(t, tr, files)
	read := func() {
		t.Helper()
		for i, id := range ids {
			if got, err := tr.ReadBlob(ctx, "", DataBlob, id); err != nil || !bytes.Equal(got, files[i]) {
				t.Fatalf("ReadBlob of member %d: %v", i, err)
			}
		}
	}
	tr.groups = newGroupCache(20 * time.Millisecond)
	read()
	deadline := time.Now().Add(30 * time.Second)
	for {
		used, _, _, _ := tr.groups.Stats()
		if used == 0 && !tr.groups.armed.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group cache still holds %d bytes 30 s after its last use (idle time 20 ms)", used)
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := groupLoads(tr)
	read()
	if n := groupLoads(tr) - before; n < 1 {
		t.Fatalf("members read after the cache emptied: %d group loads, want the group read again", n)
	}

	tr.groups = newGroupCache(time.Hour)
	read()
	if used, _, _, _ := tr.groups.Stats(); used == 0 {
		t.Fatal("nothing cached after reading members")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if used, _, _, _ := tr.groups.Stats(); used != 0 {
		t.Fatalf("a closed Repository keeps %d bytes of groups", used)
	}
}

// groupLoads is how many group reads tr's cache started (and groups that
// StreamBlobs added).
func groupLoads(tr *testRepo) int64 {
	_, _, misses, _ := tr.groups.Stats()
	return misses
}

// TestAddGroupOfOneFile: a group holding one file whole has the file's ID:
// AddGroup writes the group blob alone, which reads as the file (a member
// frame for it would name itself).
func TestAddGroupOfOneFile(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	files, _ := smallFiles(4)
	key := tr.ChunkKey("")
	id := key.Sum(files[3])
	p := tr.NewPacker(ctx, "")
	if err := p.AddGroup(id, 0, len(files[3]), files[3], []GroupMember{{ID: id, Length: uint32(len(files[3]))}}); err != nil {
		t.Fatal(err)
	}
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != 1 || len(packs[0].Blobs) != 1 || packs[0].Blobs[0].Flags != 0 {
		t.Fatalf("a group of one file: %+v, want one pack of the group alone", packs)
	}
	if err := tr.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	if got, err := tr.ReadBlob(ctx, "", DataBlob, id); err != nil || !bytes.Equal(got, files[3]) {
		t.Fatalf("ReadBlob: %v", err)
	}
}

// TestMemberFrames: the frames of a group's members name the group and
// their slices of it, in order; a blob that is not a member and a member
// whose length is not the index's are refused, naming the blob.
func TestMemberFrames(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	files, _ := smallFiles(5)
	gid, ids := addGroup(t, tr, files)
	all := append(slices.Clone(ids), gid, ids[1])
	m, err := tr.Locate("", all)
	if err != nil {
		t.Fatal(err)
	}
	locs := make([]index.Location, len(all))
	for i, id := range all {
		locs[i] = m[id]
	}
	locs[len(all)-1].RawLength++ // ids[1], as the index would have it wrong
	frames, errs := tr.MemberFrames(ctx, "", all, locs)
	off := uint32(0)
	for i := range ids {
		if errs[i] != nil || frames[i] != (chunk.Member{Group: gid, Offset: off, Length: uint32(len(files[i]))}) {
			t.Fatalf("member %d: %+v %v, want group %s at %d+%d", i, frames[i], errs[i], gid.Short(), off, len(files[i]))
		}
		off += uint32(len(files[i]))
	}
	for i, want := range map[int]string{
		len(ids):     "data blob " + gid.Short() + ": not a member blob (flags 0x01, pack " + ShortHex(locs[len(ids)].Pack) + ")",
		len(ids) + 1: fmt.Sprintf("data blob %s: member of %d bytes, index says %d (pack %s)", ids[1].Short(), len(files[1]), len(files[1])+1, ShortHex(locs[1].Pack)),
	} {
		var ce *CorruptError
		if !errors.As(errs[i], &ce) || errs[i].Error() != want {
			t.Errorf("blob %d: %v, want a CorruptError %q", i, errs[i], want)
		}
	}
}
