package walarchive

import (
	"context"
	"testing"

	"memento/repo"
)

// snapshotLister is a Repository that only lists snapshots; any other call
// panics (nil embedded interface).
type snapshotLister struct {
	Repository
	sns []*repo.Snapshot
}

func (f *snapshotLister) Snapshots(ctx context.Context) ([]*repo.Snapshot, error) { return f.sns, nil }

func (f *snapshotLister) SnapshotsOf(ctx context.Context, space string) ([]*repo.Snapshot, error) {
	var out []*repo.Snapshot
	for _, sn := range f.sns {
		if sn.Space == space {
			out = append(out, sn)
		}
	}
	return out, nil
}

// TestSnapshotWALEndWithoutRepository computes a space's WAL end over the
// snapshots of a fake Repository: the highest end of the space's Engram
// snapshots, other spaces and plain file snapshots ignored.
func TestSnapshotWALEndWithoutRepository(t *testing.T) {
	sn := func(space string, end uint64, engram bool) *repo.Snapshot {
		s := &repo.Snapshot{Manifest: repo.Manifest{Space: space}}
		if engram {
			s.Engram = &repo.EngramInfo{WALEnd: repo.WALPosition{Seq: end}}
		}
		return s
	}
	f := &snapshotLister{sns: []*repo.Snapshot{sn("s1", 40, true), sn("s2", 90, true), sn("s1", 70, true), sn("s1", 0, false), sn("s1", 55, true)}}
	for space, want := range map[string]uint64{"s1": 70, "s2": 90, "s3": 0} {
		got, err := SnapshotWALEnd(context.Background(), f, space)
		if err != nil || got != want {
			t.Errorf("SnapshotWALEnd(%s) = %d, %v; want %d", space, got, err, want)
		}
	}
}
