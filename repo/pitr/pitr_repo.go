package pitr

import (
	"context"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/walarchive"
)

// Trees is the slice of the storage core pitr's tree walks need (a
// *repo.Repository satisfies it): a space's snapshots, to tell whether it has
// an Engram snapshot, and the trees, to find a space snapshot's space
// directory and its wal/ (SpaceTree).
type Trees interface {
	SnapshotsOf(ctx context.Context, space string) ([]*repo.Snapshot, error)
	LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error)
}

// Repository is what a Planner's methods (Plan, PlanTimeline, PITRRanges,
// AllTimelines, RangesOf) read (a *repo.Repository satisfies it): the WAL
// archive's records and timelines (walarchive.Repository), the snapshots'
// trees (Trees) and where a snapshot's first WAL segment lives (Locate),
// which the Planner's FetchFunc then reads. Tests may pass a fake.
type Repository interface {
	walarchive.Repository
	Trees
	Locate(space string, ids []chunk.ID) (map[chunk.ID]index.Location, error)
}

var _ Repository = (*repo.Repository)(nil)
