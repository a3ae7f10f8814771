package pitr

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// treeServer is a Repository that serves a snapshot's trees from a map and
// locates chunks; any other method panics (nil embedded interface), so the
// test proves the Planner reads nothing else of a repository. There is no
// real repository anywhere in this test: the segment's bytes come from the
// FetchFunc the test binds, as restore.Fetcher(r) binds a real one.
type treeServer struct {
	Repository
	trees    map[chunk.ID]*repo.Tree
	loads    int
	locates  int
	segChunk []chunk.ID
}

func (f *treeServer) LoadTree(_ context.Context, space string, id chunk.ID) (*repo.Tree, error) {
	f.loads++
	t, ok := f.trees[id]
	if !ok {
		return nil, fmt.Errorf("tree %s of space %s: %w", id.Short(), space, repo.ErrNotFound)
	}
	return t, nil
}

func (f *treeServer) Locate(_ string, ids []chunk.ID) (map[chunk.ID]index.Location, error) {
	f.locates++
	out := map[chunk.ID]index.Location{}
	for _, id := range ids {
		out[id] = index.Location{Offset: 1}
	}
	return out, nil
}

// dirTree stores a one-entry tree and returns its ID.
func (f *treeServer) dirTree(key chunk.Key, n *repo.Node) chunk.ID {
	id := key.Sum([]byte(n.Name + fmt.Sprint(len(f.trees))))
	f.trees[id] = &repo.Tree{Version: 1, Nodes: []*repo.Node{n}}
	return id
}

// fakeSnapshot builds the trees of a space snapshot whose wal/ holds one
// segment of the given content, split in two chunks.
func fakeSnapshot(f *treeServer, key chunk.Key, space, segName string, seg []byte) (*repo.Snapshot, map[chunk.ID][]byte) {
	half := len(seg) / 2
	c1, c2 := key.Sum(seg[:half]), key.Sum(seg[half:])
	data := map[chunk.ID][]byte{c1: seg[:half], c2: seg[half:]}
	f.segChunk = []chunk.ID{c1, c2}
	wal := f.dirTree(key, &repo.Node{Name: segName, Type: repo.NodeFile, Size: uint64(len(seg)), Content: f.segChunk})
	sd := f.dirTree(key, &repo.Node{Name: "wal", Type: repo.NodeDir, Subtree: &wal})
	sp := f.dirTree(key, &repo.Node{Name: space, Type: repo.NodeDir, Subtree: &sd})
	root := f.dirTree(key, &repo.Node{Name: "spaces", Type: repo.NodeDir, Subtree: &sp})
	sn := &repo.Snapshot{ID: key.Sum([]byte("snapshot " + segName)), Manifest: repo.Manifest{Space: space, Root: root}}
	return sn, data
}

// TestPlannerCompactedHeadWithoutRepository finds what a snapshot's WAL
// starts with through a fake Repository and a FetchFunc bound to a map of
// chunks: a compacted segment is read to its closing marker, an ordinary one
// only to its first entry, and the answer is remembered per snapshot (a
// second question reads no tree and fetches nothing).
func TestPlannerCompactedHeadWithoutRepository(t *testing.T) {
	key := chunk.DeriveKey([32]byte{7}, "s1")
	compacted := func(seq uint64, ts int64, typ walreplay.EntryType) *walreplay.Entry {
		return &walreplay.Entry{Seq: seq, TimestampNS: ts, Type: typ, Flags: walreplay.FlagCompacted}
	}
	for _, tc := range []struct {
		name    string
		entries []*walreplay.Entry
		want    *CompactedHead
	}{
		{"compacted", []*walreplay.Entry{compacted(5, 50, walreplay.Marker), compacted(6, 60, walreplay.Marker), compacted(9, 90, walreplay.Marker)},
			&CompactedHead{Name: walreplay.SegmentName(5), First: 5, Last: 9, LastTS: 90}},
		{"ordinary", []*walreplay.Entry{{Seq: 5, TimestampNS: 50, Type: walreplay.Marker}, {Seq: 6, TimestampNS: 60, Type: walreplay.Marker}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seg []byte
			for _, e := range tc.entries {
				seg = walreplay.AppendEntry(seg, e)
			}
			f := &treeServer{trees: map[chunk.ID]*repo.Tree{}}
			sn, data := fakeSnapshot(f, key, "s1", walreplay.SegmentName(5), seg)
			var fetched [][]chunk.ID
			p := NewPlanner(func(_ context.Context, got *repo.Snapshot, ids []chunk.ID, locs map[chunk.ID]index.Location, fn func([]byte) error) error {
				if got != sn {
					return fmt.Errorf("fetch for snapshot %s, want %s", got.ShortID(), sn.ShortID())
				}
				fetched = append(fetched, ids)
				for _, id := range ids {
					if _, ok := locs[id]; !ok {
						return fmt.Errorf("chunk %s not located", id.Short())
					}
					if err := fn(data[id]); err != nil {
						return err
					}
				}
				return nil
			})
			arch := &walarchive.WALArchive{Space: "s1"} // knows no segment: the planner reads it
			for i := range 2 {
				h, err := p.snapshotCompactedHead(context.Background(), f, sn, arch)
				if err != nil {
					t.Fatalf("question %d: %v", i+1, err)
				}
				if (h == nil) != (tc.want == nil) || h != nil && *h != *tc.want {
					t.Fatalf("question %d: head %+v, want %+v", i+1, h, tc.want)
				}
			}
			if len(fetched) != 1 || !slices.Equal(fetched[0], f.segChunk) {
				t.Fatalf("fetched %v, want the segment's chunks %v once", fetched, f.segChunk)
			}
			if f.loads != 4 || f.locates != 1 {
				t.Fatalf("%d tree loads and %d locates, want 4 and 1 (the second answer is remembered)", f.loads, f.locates)
			}
		})
	}
}

// TestPlannerFetchErrorWithoutRepository: a FetchFunc that fails makes the
// question fail with the snapshot and the error in the message, and nothing
// is remembered.
func TestPlannerFetchErrorWithoutRepository(t *testing.T) {
	key := chunk.DeriveKey([32]byte{7}, "s1")
	seg := walreplay.AppendEntry(nil, &walreplay.Entry{Seq: 5, TimestampNS: 50, Type: walreplay.Marker, Flags: walreplay.FlagCompacted})
	f := &treeServer{trees: map[chunk.ID]*repo.Tree{}}
	sn, _ := fakeSnapshot(f, key, "s1", walreplay.SegmentName(5), seg)
	calls := 0
	p := NewPlanner(func(context.Context, *repo.Snapshot, []chunk.ID, map[chunk.ID]index.Location, func([]byte) error) error {
		calls++
		return fmt.Errorf("pack gone")
	})
	for i := range 2 {
		_, err := p.snapshotCompactedHead(context.Background(), f, sn, &walarchive.WALArchive{})
		want := fmt.Sprintf("snapshot %s: WAL: segment %s offset 0: pack gone", sn.ShortID(), walreplay.SegmentName(5))
		if err == nil || err.Error() != want {
			t.Fatalf("question %d: error %v, want %q", i+1, err, want)
		}
	}
	if calls != 2 {
		t.Fatalf("%d fetches, want 2 (a failure is not remembered)", calls)
	}
}
