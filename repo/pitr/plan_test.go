package pitr

import (
	"slices"
	"testing"

	"memento/repo"
	"memento/walreplay"
)

func TestPITRPlanAndRanges(t *testing.T) {
	mk := func(id byte, c, e uint64) Source {
		sn := &repo.Snapshot{}
		sn.ID[0] = id
		sn.Engram = &repo.EngramInfo{Checkpoint: repo.WALPosition{Seq: c, TimestampNS: int64(c) * 10}, WALEnd: repo.WALPosition{Seq: e, TimestampNS: int64(e) * 10}}
		return Source{Snapshot: sn, Start: sn.Engram.Checkpoint, End: repo.WALPosition{Seq: 500, TimestampNS: 5000}}
	}
	srcs := []Source{mk(1, 10, 50), mk(2, 100, 200), mk(3, 300, 400)}
	seq := func(n uint64) walreplay.Target { return walreplay.Target{ToSeq: &n} }
	at := func(ts int64) walreplay.Target { return walreplay.Target{AtTime: &ts} }
	tests := []struct {
		name string
		t    walreplay.Target
		want byte // snapshot ID byte, 0 = none
	}{
		{"before everything", seq(5), 0},
		{"covered by the first only", seq(30), 1},
		{"after the first's end", seq(60), 1},
		{"newest whose end is before", seq(250), 2},
		{"exactly at an end", seq(400), 3},
		{"covering when nothing ends before", seq(20), 1},
		{"inside the second's WAL: the first ends before", seq(150), 1},
		{"past the archive", seq(501), 0},
		{"time exactly at an end", at(2000), 2},
		{"time past the archive", at(5001), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := planPITR(srcs, tc.t)
			if tc.want == 0 {
				if ok {
					t.Fatalf("planned snapshot %d, want none", got.Snapshot.ID[0])
				}
				return
			}
			if !ok || got.Snapshot.ID[0] != tc.want {
				t.Fatalf("planned %v, want snapshot %d", got, tc.want)
			}
		})
	}
	rs := mergeRanges([]Source{
		{Start: repo.WALPosition{Seq: 10, TimestampNS: 100}, End: repo.WALPosition{Seq: 50, TimestampNS: 500}},
		{Start: repo.WALPosition{Seq: 51, TimestampNS: 510}, End: repo.WALPosition{Seq: 80, TimestampNS: 800}},
		{Start: repo.WALPosition{Seq: 200, TimestampNS: 2000}, End: repo.WALPosition{Seq: 300, TimestampNS: 3000}},
	})
	want := []PITRRange{{10, 100, 80, 800, 2}, {200, 2000, 300, 3000, 1}}
	if !slices.Equal(rs, want) {
		t.Fatalf("ranges %+v, want %+v", rs, want)
	}
}
