package walarchive

import (
	"context"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// chunkRetainer is implemented by a repository whose backend may retain
// files (a *repo.Repository): ExtendChunkRetention makes the packs of
// chunks retained as long as a file written now. An optional interface, so
// that the small fakes of tests need not implement it.
type chunkRetainer interface {
	ExtendChunkRetention(ctx context.Context, space string, ids []chunk.ID) (*repo.RetentionReport, error)
}

// extendRecordRetention makes every pack holding a chunk of recs that is
// not in fresh (the packs this run wrote, retained from now anyway)
// retained at least as long as the record file about to be written, on a
// repository under S3 Object Lock: a record of a growing segment names the
// chunks earlier runs stored, and chunks shared with older segments or
// snapshots, whose packs' retention may expire before the record's
// (docs/operations/ransomware.md, "Packs shared by newer snapshots").
// The local index knows a lower bound of each pack's retention, so a run
// asks the storage only about packs not known to be retained long enough.
func extendRecordRetention(ctx context.Context, r Repository, space string, recs []WALSegmentRecord, fresh []index.PackInfo) (*repo.RetentionReport, error) {
	cr, ok := r.(chunkRetainer)
	if !ok || len(recs) == 0 {
		return nil, nil
	}
	if ex, ok := r.Backend().(repo.RetentionExtender); !ok || ex.RetentionPeriod() <= 0 {
		return nil, nil
	}
	skip := map[chunk.ID]struct{}{}
	for _, p := range fresh {
		for _, b := range p.Blobs {
			skip[b.ID] = struct{}{}
		}
	}
	var ids []chunk.ID
	for _, rec := range recs {
		for _, c := range rec.Chunks {
			if _, ok := skip[c.ID]; !ok {
				skip[c.ID] = struct{}{}
				ids = append(ids, c.ID)
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return cr.ExtendChunkRetention(ctx, space, ids)
}
