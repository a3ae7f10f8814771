package index

import (
	"encoding/binary"
	"errors"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"memento/chunk"
)

func openTemp(t testing.TB) *Index {
	t.Helper()
	ix, err := Open(filepath.Join(t.TempDir(), "cache", "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// blobID returns a deterministic, well-spread ID.
func blobID(seed, i uint64) chunk.ID {
	var id chunk.ID
	x := seed*0x9e3779b97f4a7c15 + i*0xbf58476d1ce4e5b9 + 1
	for j := 0; j < 4; j++ {
		x ^= x >> 31
		x *= 0x94d049bb133111eb
		x ^= x >> 29
		binary.LittleEndian.PutUint64(id[j*8:], x)
	}
	return id
}

// makePacks builds n packs of k blobs each for a space; IDs depend on seed.
func makePacks(space string, seed uint64, n, k int) []PackInfo {
	packs := make([]PackInfo, n)
	for p := range packs {
		pid := blobID(seed^0xabcdef, uint64(p))
		packs[p] = PackInfo{ID: pid, Space: space, Size: int64(k) * 1000}
		for b := range k {
			packs[p].Blobs = append(packs[p].Blobs, BlobInfo{
				ID: blobID(seed, uint64(p*k+b)), Type: uint8(b % 2), Flags: 1,
				Offset: uint32(b * 1000), Length: 900, RawLength: uint32(2000 + b),
			})
		}
	}
	return packs
}

func locOf(p PackInfo, b BlobInfo) Location {
	return Location{Pack: p.ID, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type, Flags: b.Flags}
}

func idsOf(packs []PackInfo) []chunk.ID {
	var ids []chunk.ID
	for _, p := range packs {
		for _, b := range p.Blobs {
			ids = append(ids, b.ID)
		}
	}
	return ids
}

func TestOpenCreatesLayout(t *testing.T) {
	ix := openTemp(t)
	if !filepath.IsAbs(ix.Path()) || filepath.Base(ix.Path()) != "index.db" {
		t.Fatalf("Path = %q", ix.Path())
	}
	files, err := ix.LoadedFiles()
	if err != nil || len(files) != 0 {
		t.Fatalf("LoadedFiles = %v, %v", files, err)
	}
	// Opening again finds the same, initialised file.
	if _, err := Open(ix.Path()); err != nil {
		t.Fatal(err)
	}
}

func TestAddFileLookupRoundTrip(t *testing.T) {
	cases := []struct {
		desc   string
		files  map[string][]PackInfo
		spaces []string
	}{
		{"one file one pack", map[string][]PackInfo{"index/01": makePacks("a", 1, 1, 5)}, []string{"a"}},
		{"empty file", map[string][]PackInfo{"index/02": nil}, nil},
		{"pack without blobs", map[string][]PackInfo{"index/03": makePacks("a", 2, 3, 0)}, []string{"a"}},
		{"two spaces in one file", map[string][]PackInfo{
			"index/04": append(makePacks("a", 3, 2, 10), makePacks("b", 4, 3, 7)...),
		}, []string{"a", "b"}},
		{"several files", map[string][]PackInfo{
			"index/05": makePacks("a", 5, 4, 50),
			"index/06": makePacks("a", 6, 4, 50),
			"index/07": makePacks("c", 7, 1, 1),
		}, []string{"a", "c"}},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			ix := openTemp(t)
			wantLoc := map[string]map[chunk.ID]Location{}
			var wantPacks []PackSummary
			for name, packs := range c.files {
				if err := ix.AddFile(name, packs); err != nil {
					t.Fatal(err)
				}
				for _, p := range packs {
					wantPacks = append(wantPacks, PackSummary{ID: p.ID, Size: p.Size, Space: p.Space, Blobs: len(p.Blobs), Files: []string{name}})
					if wantLoc[p.Space] == nil {
						wantLoc[p.Space] = map[chunk.ID]Location{}
					}
					for _, b := range p.Blobs {
						wantLoc[p.Space][b.ID] = locOf(p, b)
					}
				}
			}
			files, err := ix.LoadedFiles()
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, slices.Sorted(maps.Keys(c.files))) {
				t.Errorf("LoadedFiles = %v", got)
			}
			spaces, err := ix.Spaces()
			if err != nil || !slices.Equal(spaces, c.spaces) {
				t.Errorf("Spaces = %v, %v; want %v", spaces, err, c.spaces)
			}
			for space, want := range wantLoc {
				ids := slices.Collect(maps.Keys(want))
				ids = append(ids, blobID(999, 1)) // unknown ID: absent from the result
				got, err := ix.Lookup(space, ids)
				if err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(got, want) {
					t.Errorf("Lookup(%s): %d results, want %d (or different)", space, len(got), len(want))
				}
				set, err := ix.SpaceIDs(space)
				if err != nil {
					t.Fatal(err)
				}
				if len(set) != len(want) {
					t.Errorf("SpaceIDs(%s): %d ids, want %d", space, len(set), len(want))
				}
				for id := range want {
					if _, ok := set[id]; !ok {
						t.Errorf("SpaceIDs(%s) lacks %s", space, id.Short())
					}
				}
				// SpaceScan: the same set, plus the locations of the blobs of type 1.
				set2, ones, err := ix.SpaceScan(space, func(typ uint8) bool { return typ == 1 })
				if err != nil {
					t.Fatal(err)
				}
				wantOnes := maps.Collect(func(yield func(chunk.ID, Location) bool) {
					for id, l := range want {
						if l.Type == 1 && !yield(id, l) {
							return
						}
					}
				})
				if !maps.Equal(set2, set) || !maps.Equal(ones, wantOnes) {
					t.Errorf("SpaceScan(%s): %d ids, %d of type 1; want %d and %d (or different)", space, len(set2), len(ones), len(set), len(wantOnes))
				}
			}
			gotPacks, err := ix.Packs()
			if err != nil {
				t.Fatal(err)
			}
			sortPacks(wantPacks)
			if len(gotPacks) != len(wantPacks) || (len(wantPacks) > 0 && !reflect.DeepEqual(gotPacks, wantPacks)) {
				t.Errorf("Packs\n got %+v\nwant %+v", gotPacks, wantPacks)
			}
		})
	}
}

func sortPacks(p []PackSummary) {
	slices.SortFunc(p, func(a, b PackSummary) int { return strings.Compare(string(a.ID[:]), string(b.ID[:])) })
}

// Space A's lookups must never answer with space B's blobs, even for the
// same ID (IDs are keyed per space, but the cache must not rely on it).
func TestSpaceIsolation(t *testing.T) {
	ix := openTemp(t)
	a := makePacks("a", 1, 1, 3)
	b := makePacks("b", 2, 1, 3)
	shared := a[0].Blobs[0].ID
	b[0].Blobs[0].ID = shared
	if err := ix.AddFile("index/a", a); err != nil {
		t.Fatal(err)
	}
	if err := ix.AddFile("index/b", b); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Lookup("a", idsOf(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[shared].Pack != a[0].ID {
		t.Fatalf("Lookup(a, b's ids) = %v", got)
	}
	got, err = ix.Lookup("nope", idsOf(a))
	if err != nil || len(got) != 0 {
		t.Fatalf("Lookup(unknown space) = %v, %v", got, err)
	}
	set, err := ix.SpaceIDs("nope")
	if err != nil || len(set) != 0 {
		t.Fatalf("SpaceIDs(unknown space) = %v, %v", set, err)
	}
}

func TestAddFileIdempotentAndDuplicates(t *testing.T) {
	ix := openTemp(t)
	p1 := makePacks("s", 1, 1, 4)
	if err := ix.AddFile("index/1", p1); err != nil {
		t.Fatal(err)
	}
	// Same name again, even with other content: no-op (files are immutable).
	if err := ix.AddFile("index/1", makePacks("s", 2, 1, 4)); err != nil {
		t.Fatal(err)
	}
	if got, _ := ix.Lookup("s", idsOf(makePacks("s", 2, 1, 4))); len(got) != 0 {
		t.Fatalf("re-adding a loaded name merged new blobs: %v", got)
	}
	// Another file listing the same pack again (e.g. after a rebuild): one
	// location, the pack listed by both files.
	if err := ix.AddFile("index/2", p1); err != nil {
		t.Fatal(err)
	}
	all, err := ix.LookupAll("s", idsOf(p1))
	if err != nil {
		t.Fatal(err)
	}
	for id, ls := range all {
		if len(ls) != 1 {
			t.Fatalf("%s: %d locations after re-listing the same pack", id.Short(), len(ls))
		}
	}
	packs, _ := ix.Packs()
	if len(packs) != 1 || !slices.Equal(packs[0].Files, []string{"index/1", "index/2"}) {
		t.Fatalf("Packs = %+v", packs)
	}
	// A second pack holding the same blob (two concurrent backups): both
	// locations kept, Lookup returns the first.
	p3 := makePacks("s", 3, 1, 1)
	p3[0].Blobs[0].ID = p1[0].Blobs[2].ID
	if err := ix.AddFile("index/3", p3); err != nil {
		t.Fatal(err)
	}
	id := p1[0].Blobs[2].ID
	all, err = ix.LookupAll("s", []chunk.ID{id})
	if err != nil {
		t.Fatal(err)
	}
	want := []Location{locOf(p1[0], p1[0].Blobs[2]), locOf(p3[0], p3[0].Blobs[0])}
	if !slices.Equal(all[id], want) {
		t.Fatalf("LookupAll = %+v, want %+v", all[id], want)
	}
	one, _ := ix.Lookup("s", []chunk.ID{id})
	if one[id] != want[0] {
		t.Fatalf("Lookup = %+v, want the first location", one[id])
	}
}

func TestRemoveFile(t *testing.T) {
	ix := openTemp(t)
	p1 := makePacks("s", 1, 2, 4)
	p2 := makePacks("s", 2, 1, 4)
	// A blob of p1's first pack is also in p2's pack.
	dup := p1[0].Blobs[0].ID
	p2[0].Blobs[0].ID = dup
	for name, packs := range map[string][]PackInfo{"index/1": p1, "index/2": p2, "index/3": p1[1:]} {
		if err := ix.AddFile(name, packs); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.RemoveFile("index/1"); err != nil {
		t.Fatal(err)
	}
	if err := ix.RemoveFile("index/1"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	files, _ := ix.LoadedFiles()
	if !maps.Equal(files, map[string]bool{"index/2": true, "index/3": true}) {
		t.Fatalf("LoadedFiles = %v", files)
	}
	got, err := ix.LookupAll("s", append(idsOf(p1), idsOf(p2)...))
	if err != nil {
		t.Fatal(err)
	}
	// p1[0] is gone (only index/1 listed it); p1[1] stays (index/3 lists it);
	// the duplicate blob keeps its location in p2.
	for _, b := range p1[0].Blobs[1:] {
		if _, ok := got[b.ID]; ok {
			t.Errorf("blob %s of a dropped pack still present", b.ID.Short())
		}
	}
	for _, b := range p1[1].Blobs {
		if !slices.Equal(got[b.ID], []Location{locOf(p1[1], b)}) {
			t.Errorf("blob %s of a kept pack: %+v", b.ID.Short(), got[b.ID])
		}
	}
	if !slices.Equal(got[dup], []Location{locOf(p2[0], p2[0].Blobs[0])}) {
		t.Errorf("duplicate blob: %+v", got[dup])
	}
	packs, _ := ix.Packs()
	want := []PackSummary{
		{ID: p1[1].ID, Size: p1[1].Size, Space: "s", Blobs: 4, Files: []string{"index/3"}},
		{ID: p2[0].ID, Size: p2[0].Size, Space: "s", Blobs: 4, Files: []string{"index/2"}},
	}
	sortPacks(want)
	if !reflect.DeepEqual(packs, want) {
		t.Errorf("Packs\n got %+v\nwant %+v", packs, want)
	}
}

func TestAddFileRejectsBadInput(t *testing.T) {
	ix := openTemp(t)
	good := makePacks("s", 1, 1, 2)
	beyond := makePacks("s", 1, 1, 2)
	beyond[0].Blobs[1].Offset = 1500 // +900 > 2000-byte pack
	neg := makePacks("s", 1, 1, 0)
	neg[0].Size = -1
	cases := []struct {
		name  string
		packs []PackInfo
		want  string
	}{
		{"", good, `add file: invalid name ""`},
		{"index/x", makePacks("", 1, 1, 1), "pack " + hexID(good[0].ID) + ": empty space"},
		{"index/x", makePacks(strings.Repeat("s", 256), 1, 1, 1), "pack " + hexID(good[0].ID) + ": space name of 256 bytes, at most 255"},
		{"index/x", neg, "pack " + hexID(good[0].ID) + ": negative size -1"},
		{"index/x", beyond, "pack " + hexID(good[0].ID) + ": blob " + beyond[0].Blobs[1].ID.String() + " at 1500+900 ends beyond the 2000-byte pack"},
	}
	for _, c := range cases {
		err := ix.AddFile(c.name, c.packs)
		if err == nil || !strings.HasSuffix(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "index "+ix.Path()+": ") {
			t.Errorf("AddFile: %v\nwant suffix %q", err, c.want)
		}
	}
	// Nothing was merged by the failed calls.
	if files, _ := ix.LoadedFiles(); len(files) != 0 {
		t.Fatalf("LoadedFiles = %v", files)
	}
	// A pack re-listed with another size or space is a contradiction.
	if err := ix.AddFile("index/1", good); err != nil {
		t.Fatal(err)
	}
	bad := makePacks("other", 1, 1, 2)
	err := ix.AddFile("index/2", bad)
	want := "pack " + hexID(good[0].ID) + ` listed as 2000 bytes of space "other", already known as 2000 bytes of space "s"`
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("AddFile(contradiction) = %v", err)
	}
	if files, _ := ix.LoadedFiles(); len(files) != 1 {
		t.Fatalf("the failed transaction was not rolled back: %v", files)
	}
}

func hexID(id [32]byte) string { return chunk.ID(id).String() }

func TestReset(t *testing.T) {
	ix := openTemp(t)
	packs := makePacks("s", 1, 2, 10)
	if err := ix.AddFile("index/1", packs); err != nil {
		t.Fatal(err)
	}
	if err := ix.PutSnapshots([]SnapshotEntry{{ID: "snap1", Space: "s"}}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Bind("repo-1"); err != nil {
		t.Fatal(err)
	}
	if err := ix.Reset(); err != nil {
		t.Fatal(err)
	}
	files, _ := ix.LoadedFiles()
	got, _ := ix.Lookup("s", idsOf(packs))
	ps, _ := ix.Packs()
	snaps, _ := ix.Snapshots()
	sp, _ := ix.Spaces()
	repo, _ := ix.RepoID()
	if len(files)+len(got)+len(ps)+len(snaps)+len(sp) != 0 || repo != "" {
		t.Fatalf("after Reset: files %v, blobs %d, packs %d, snapshots %d, spaces %v, repo %q",
			files, len(got), len(ps), len(snaps), sp, repo)
	}
	// The file is usable again, and may be bound to another repository.
	if err := ix.Bind("repo-2"); err != nil {
		t.Fatal(err)
	}
	if err := ix.AddFile("index/1", packs); err != nil {
		t.Fatal(err)
	}
	if got, _ := ix.Lookup("s", idsOf(packs)); len(got) != 20 {
		t.Fatalf("after re-adding: %d blobs", len(got))
	}
}

func TestBind(t *testing.T) {
	ix := openTemp(t)
	if id, err := ix.RepoID(); err != nil || id != "" {
		t.Fatalf("RepoID = %q, %v", id, err)
	}
	if err := ix.Bind("aaaa"); err != nil {
		t.Fatal(err)
	}
	if err := ix.Bind("aaaa"); err != nil {
		t.Fatalf("same id again: %v", err)
	}
	err := ix.Bind("bbbb")
	if !errors.Is(err, ErrForeign) {
		t.Fatalf("Bind(other) = %v, want ErrForeign", err)
	}
	want := "index " + ix.Path() + `: index file belongs to another repository: it caches repository aaaa, not bbbb (use another cache file or run "memento index rebuild" to recreate it)`
	if err.Error() != want {
		t.Fatalf("error text\n got %q\nwant %q", err, want)
	}
	if id, _ := ix.RepoID(); id != "aaaa" {
		t.Fatalf("RepoID = %q", id)
	}
	if err := ix.Bind(""); err == nil {
		t.Fatal("Bind(\"\") accepted")
	}
}

func TestAddFilesBatch(t *testing.T) {
	ix := openTemp(t)
	a := makePacks("s", 1, 2, 10)
	b := makePacks("s", 2, 1, 10)
	c := makePacks("t", 3, 1, 5)
	if err := ix.AddFile("index/a", a); err != nil {
		t.Fatal(err)
	}
	// A batch with an already-loaded name, a new one twice, and a new space.
	err := ix.AddFiles([]File{
		{Name: "index/a", Packs: makePacks("s", 9, 1, 1)},
		{Name: "index/b", Packs: b},
		{Name: "index/b", Packs: makePacks("s", 8, 1, 1)},
		{Name: "index/c", Packs: c},
	})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := ix.LoadedFiles()
	if !maps.Equal(files, map[string]bool{"index/a": true, "index/b": true, "index/c": true}) {
		t.Fatalf("LoadedFiles = %v", files)
	}
	for space, want := range map[string]int{"s": 30, "t": 5, "u": 0} {
		if n, err := ix.BlobCount(space); err != nil || n != want {
			t.Errorf("BlobCount(%s) = %d, %v; want %d", space, n, err, want)
		}
	}
	if got, _ := ix.Lookup("s", idsOf(makePacks("s", 9, 1, 1))); len(got) != 0 {
		t.Fatalf("content of a re-added name was merged")
	}
	if got, _ := ix.Lookup("s", idsOf(makePacks("s", 8, 1, 1))); len(got) != 0 {
		t.Fatalf("second entry of a name in one batch was merged")
	}
	// One bad file fails the whole batch.
	bad := makePacks("s", 5, 1, 1)
	bad[0].Size = -5
	if err := ix.AddFiles([]File{{Name: "index/d", Packs: makePacks("s", 4, 1, 1)}, {Name: "index/e", Packs: bad}}); err == nil {
		t.Fatal("bad batch accepted")
	}
	if files, _ := ix.LoadedFiles(); len(files) != 3 {
		t.Fatalf("part of a failed batch was merged: %v", files)
	}
}

func TestBlobCountFollowsChanges(t *testing.T) {
	ix := openTemp(t)
	p1 := makePacks("s", 1, 1, 10)
	p2 := makePacks("s", 2, 1, 10)
	p2[0].Blobs[0].ID = p1[0].Blobs[0].ID // one blob in both packs
	steps := []struct {
		do   func() error
		want int
	}{
		{func() error { return ix.AddFile("index/1", p1) }, 10},
		{func() error { return ix.AddFile("index/2", p2) }, 19},
		{func() error { return ix.AddFile("index/2", p2) }, 19},
		{func() error { return ix.RemoveFile("index/1") }, 10},
		{func() error { return ix.RemoveFile("index/2") }, 0},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
		n, err := ix.BlobCount("s")
		if err != nil || n != s.want {
			t.Fatalf("step %d: BlobCount = %d, %v; want %d", i, n, err, s.want)
		}
		ids, _ := ix.SpaceIDs("s")
		if len(ids) != s.want {
			t.Fatalf("step %d: SpaceIDs has %d", i, len(ids))
		}
	}
}
