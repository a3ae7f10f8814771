package inspect

import (
	"context"
	"maps"
	"slices"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// Stats are the sizes of a set of snapshots (restic's stats modes in one):
// what restoring every one of them would write (RestoreSize), and the
// distinct blobs they reference (RawData), stored and uncompressed, with
// the ratios that follow.
type Stats struct {
	Snapshots int `json:"snapshots"`
	// Restore size: every snapshot's files counted as often as they
	// appear, as restoring them all would write.
	Files    uint64 `json:"files"`
	Dirs     uint64 `json:"dirs"`
	Symlinks uint64 `json:"symlinks"`
	Bytes    uint64 `json:"restore_size"`
	// Raw data: the distinct blobs referenced (a blob shared by files or
	// snapshots counted once), zero with RestoreSizeOnly.
	DataBlobs       uint64 `json:"data_blobs"`
	DataRawBytes    uint64 `json:"data_raw_bytes"`    // uncompressed
	DataStoredBytes uint64 `json:"data_stored_bytes"` // compressed and encrypted, as in the packs
	TreeBlobs       uint64 `json:"tree_blobs"`
	TreeStoredBytes uint64 `json:"tree_stored_bytes"`
	// DedupRatio is Bytes / DataRawBytes: how many times over the distinct
	// data is used. CompressionRatio is DataRawBytes / DataStoredBytes.
	// Both are 0 when there is nothing to divide by.
	DedupRatio       float64 `json:"dedup_ratio"`
	CompressionRatio float64 `json:"compression_ratio"`
}

// StatsOptions: RestoreSizeOnly skips the blob sizes (no index lookups).
type StatsOptions struct {
	RestoreSizeOnly bool
}

// treeSum is the restore size of one tree, computed once per tree ID.
type treeSum struct{ files, dirs, symlinks, bytes uint64 }

type statser struct {
	ctx   context.Context
	r     Repository
	opts  StatsOptions
	space string
	sums  map[chunk.ID]treeSum
	data  map[chunk.ID]struct{}
	trees map[chunk.ID]struct{}
}

// ComputeStats sums the snapshots sns. Each distinct tree is read once:
// snapshots that share subtrees (every backup after the first) cost only
// what changed.
func ComputeStats(ctx context.Context, r Repository, sns []*repo.Snapshot, opts StatsOptions) (*Stats, error) {
	st := &Stats{Snapshots: len(sns)}
	bySpace := map[string][]*repo.Snapshot{}
	for _, sn := range sns {
		sp := repo.StorageSpace(sn.Space)
		bySpace[sp] = append(bySpace[sp], sn)
	}
	for _, sp := range slices.Sorted(maps.Keys(bySpace)) {
		s := &statser{ctx: ctx, r: r, opts: opts, space: sp, sums: map[chunk.ID]treeSum{},
			data: map[chunk.ID]struct{}{}, trees: map[chunk.ID]struct{}{}}
		for _, sn := range bySpace[sp] {
			ts, err := s.tree(sn.Root)
			if err != nil {
				return nil, err
			}
			st.Files += ts.files
			st.Dirs += ts.dirs
			st.Symlinks += ts.symlinks
			st.Bytes += ts.bytes
		}
		if opts.RestoreSizeOnly {
			continue
		}
		if err := s.sizes(st); err != nil {
			return nil, err
		}
	}
	if st.DataRawBytes > 0 {
		st.DedupRatio = float64(st.Bytes) / float64(st.DataRawBytes)
	}
	if st.DataStoredBytes > 0 {
		st.CompressionRatio = float64(st.DataRawBytes) / float64(st.DataStoredBytes)
	}
	return st, nil
}

func (s *statser) tree(id chunk.ID) (treeSum, error) {
	if ts, ok := s.sums[id]; ok {
		return ts, nil
	}
	if err := s.ctx.Err(); err != nil {
		return treeSum{}, err
	}
	t, err := s.r.LoadTree(s.ctx, s.space, id)
	if err != nil {
		return treeSum{}, err
	}
	s.trees[id] = struct{}{}
	var ts treeSum
	for _, n := range t.Nodes {
		switch n.Type {
		case repo.NodeFile:
			ts.files++
			ts.bytes += n.Size
			for _, c := range n.Content {
				s.data[c] = struct{}{}
			}
		case repo.NodeSymlink:
			ts.symlinks++
		case repo.NodeDir:
			sub, err := s.tree(*n.Subtree)
			if err != nil {
				return treeSum{}, err
			}
			ts.dirs += 1 + sub.dirs
			ts.files += sub.files
			ts.symlinks += sub.symlinks
			ts.bytes += sub.bytes
		}
	}
	s.sums[id] = ts
	return ts, nil
}

// groupSizes adds the stored size of the groups of members (format 6)
// once each: a member's own stored form is a frame of some 80 bytes, its
// bytes are in its group (a pystd backup showed 62 MiB stored of 190). A
// group the snapshots also use as a chunk was counted already; a member
// whose frame cannot be read adds its frame only (check reports it).
func (s *statser) groupSizes(st *Stats, members []chunk.ID, locs []index.Location) error {
	if len(members) == 0 {
		return nil
	}
	targets, errs := s.r.RefTargets(s.ctx, s.space, members, locs)
	if err := s.ctx.Err(); err != nil {
		return err
	}
	groups := map[chunk.ID]struct{}{}
	for i, g := range targets {
		if _, used := s.data[g]; errs[i] == nil && !used {
			groups[g] = struct{}{}
		}
	}
	gids := slices.Collect(maps.Keys(groups))
	glocs, err := s.r.Locate(s.space, gids)
	if err != nil {
		return err
	}
	for _, id := range gids {
		st.DataStoredBytes += uint64(glocs[id].Length)
	}
	return nil
}

// sizes adds the stored and raw sizes of the space's distinct blobs, from
// the index (no data is read but the frames of members: groupSizes).
func (s *statser) sizes(st *Stats) error {
	ids := slices.Collect(maps.Keys(s.data))
	locs, err := s.r.Locate(s.space, ids)
	if err != nil {
		return err
	}
	var members []chunk.ID
	var mlocs []index.Location
	for _, id := range ids {
		l := locs[id]
		st.DataBlobs++
		st.DataRawBytes += uint64(l.RawLength)
		st.DataStoredBytes += uint64(l.Length)
		if l.Flags&repo.FlagMember != 0 {
			members, mlocs = append(members, id), append(mlocs, l)
		}
	}
	if err := s.groupSizes(st, members, mlocs); err != nil {
		return err
	}
	tids := slices.Collect(maps.Keys(s.trees))
	tlocs, err := s.r.Locate(s.space, tids)
	if err != nil {
		return err
	}
	for _, id := range tids {
		st.TreeBlobs++
		st.TreeStoredBytes += uint64(tlocs[id].Length)
	}
	return nil
}
