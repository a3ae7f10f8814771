package maintenance

import (
	"fmt"
	"testing"

	"memento/repo"
	"memento/repo/walarchive"
)

// TestLineBases: the snapshots whose recoveries read a timeline's own
// archive are those taken on it and those taken on an ancestor at or before
// the fork point where the timeline's line leaves it; a timeline none is a
// base of is lean when the database has snapshots elsewhere.
func TestLineBases(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	// 1 ── 100 ── (2) ── 50 ── (3): timeline 2 forked from 1 at 100,
	// timeline 3 from 2 at 50 (a point timeline 2 took from timeline 1).
	h := &walarchive.History{Identity: id, Space: "s", Records: map[uint32]*walarchive.HistoryRecord{
		2: {Timeline: 2, Parent: 1, ForkSeq: 100},
		3: {Timeline: 3, Parent: 2, ForkSeq: 50},
		4: {Timeline: 4, Parent: 1, ForkSeq: 300},
	}}
	snap := func(tl uint32, end uint64) *repo.Snapshot {
		sn := &repo.Snapshot{}
		sn.Space = "s"
		sn.Tags = []string{repo.IdentityTagPrefix + id, fmt.Sprintf("%s%d", repo.TimelineTagPrefix, tl)}
		sn.Engram = &repo.EngramInfo{WALEnd: repo.WALPosition{Seq: end}}
		return sn
	}
	a, b, c, d := snap(1, 40), snap(1, 80), snap(2, 120), snap(3, 60)
	all := []*repo.Snapshot{a, b, c, d}
	line := func(n uint32) walarchive.Line { return walarchive.Line{Identity: id, Space: "s", Timeline: n} }
	for _, tc := range []struct {
		tl   uint32
		all  []*repo.Snapshot
		want []*repo.Snapshot
		lean bool
	}{
		{1, all, []*repo.Snapshot{a, b}, false},
		{2, all, []*repo.Snapshot{a, b, c}, false}, // a, b: before the fork at 100
		{3, all, []*repo.Snapshot{a, d}, false},    // b (80) is past 3's line's cap (50)
		{4, all, []*repo.Snapshot{a, b}, false},
		{1, []*repo.Snapshot{c, d}, nil, true}, // timeline 1's snapshots forgotten
		{2, []*repo.Snapshot{d}, nil, true},    // 3's snapshot reads none of 2's own records
		{1, nil, nil, false},                   // no snapshot at all: kept whole
	} {
		got, lean := lineBases(h, line(tc.tl), tc.all)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || lean != tc.lean {
			t.Errorf("timeline %d of %d snapshots: got %d bases (lean %v), want %d (lean %v)", tc.tl, len(tc.all), len(got), lean, len(tc.want), tc.lean)
		}
	}
}
