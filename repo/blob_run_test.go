package repo

import (
	"cmp"
	"slices"
	"testing"

	"memento/chunk"
	"memento/index"
)

// TestBlobRunCut: StreamBlobs cuts the blobs given, in that order, into runs
// of pack neighbours: forwards only, gaps up to RunGap (runMaxGap by default) read through, a
// read within RunBytes (it was restore's TestPlanFetch).
func TestBlobRunCut(t *testing.T) {
	packA, packB := [32]byte{1}, [32]byte{2}
	locs := map[chunk.ID]index.Location{
		{1}: {Pack: packA, Offset: 0, Length: 100, RawLength: 100},
		{2}: {Pack: packA, Offset: 100, Length: 100, RawLength: 100},
		{3}: {Pack: packA, Offset: 200 + runMaxGap, Length: 100, RawLength: 100}, // just within the gap
		{4}: {Pack: packA, Offset: 400 + 2*runMaxGap, Length: 100, RawLength: 100},
		{5}: {Pack: packB, Offset: 0, Length: runMaxBytes - 50, RawLength: 100},
		{6}: {Pack: packB, Offset: runMaxBytes - 50, Length: 100, RawLength: 100}, // would make the read too long
	}
	cases := []struct {
		name string
		ids  []byte
		sort bool
		want []string // per run: its pack and blob count
		gap  int64    // RunGap; 0: runMaxGap
	}{
		{"neighbours", []byte{1, 2, 3}, false, []string{"A3"}, 0},
		{"gap too wide", []byte{1, 2, 3, 4}, false, []string{"A3", "A1"}, 0},
		{"backwards", []byte{2, 1}, false, []string{"A1", "A1"}, 0},
		{"backwards sorted", []byte{2, 1}, true, []string{"A2"}, 0},
		{"other pack", []byte{1, 5, 2}, false, []string{"A1", "B1", "A1"}, 0},
		{"other pack sorted", []byte{1, 5, 2}, true, []string{"A2", "B1"}, 0},
		{"read too long", []byte{5, 6}, false, []string{"B1", "B1"}, 0},
		{"gap wider than RunGap", []byte{1, 2, 3}, false, []string{"A2", "A1"}, runMaxGap - 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids := make([]chunk.ID, len(tc.ids))
			for i, b := range tc.ids {
				ids[i] = chunk.ID{b}
			}
			s := &blobStream{opts: StreamOptions{RunBytes: runMaxBytes, RunGap: cmp.Or(tc.gap, runMaxGap), Sort: tc.sort}}
			runs, which := s.cut(ids, func(i int) index.Location { return locs[ids[i]] }, nil)
			var got []string
			for n, run := range runs {
				name := "B"
				if run.pack == packA {
					name = "A"
				}
				got = append(got, name+string(rune('0'+len(run.blobs))))
				for k, i := range which[n] {
					if run.blobs[k].ID != ids[i] {
						t.Fatalf("run %d blob %d is %s, which says %s", n, k, run.blobs[k].ID.Short(), ids[i].Short())
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("runs %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("runs %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestBlobRunCutRamp: with Ramp the first runs of a stream are RunBytes/8,
// /4 and /2 long at most, then RunBytes, and the last ones at most half of
// what is left (not below RunBytes/8); every blob is still in exactly one
// run, in the order given.
func TestBlobRunCutRamp(t *testing.T) {
	const runBytes, blob = 8000, 100
	pack := [32]byte{7}
	var ids []chunk.ID
	locs := map[chunk.ID]index.Location{}
	for i := range 300 { // 30,000 bytes of neighbours in one pack
		id := chunk.ID{byte(i), byte(i >> 8), 1}
		ids = append(ids, id)
		locs[id] = index.Location{Pack: pack, Offset: uint32(i * blob), Length: blob, RawLength: blob}
	}
	cut := func(ramp bool) []int64 {
		s := &blobStream{opts: StreamOptions{RunBytes: runBytes, RunGap: runMaxGap, Ramp: ramp}}
		runs, which := s.cut(ids, func(i int) index.Location { return locs[ids[i]] }, nil)
		var sizes []int64
		next := 0
		for n, run := range runs {
			sizes = append(sizes, run.n)
			for _, i := range which[n] {
				if i != next {
					t.Fatalf("ramp %v: run %d holds blob %d, want %d", ramp, n, i, next)
				}
				next++
			}
		}
		if next != len(ids) {
			t.Fatalf("ramp %v: runs hold %d blobs of %d", ramp, next, len(ids))
		}
		return sizes
	}
	if got, want := cut(true), []int64{1000, 2000, 4000, 8000, 7500, 3700, 1900, 1000, 900}; !slices.Equal(got, want) {
		t.Errorf("ramped runs %v, want %v", got, want)
	}
	if got, want := cut(false), []int64{8000, 8000, 8000, 6000}; !slices.Equal(got, want) {
		t.Errorf("runs %v, want %v", got, want)
	}
}
