package walarchive

import (
	"slices"
	"testing"

	"memento/walreplay"
)

func seg(name string, first, last uint64, size int64, sealed, compacted bool, sum byte) WALSegmentRecord {
	r := WALSegmentRecord{Name: name, FirstSeq: first, LastSeq: last, FirstTS: int64(first) * 10, LastTS: int64(last) * 10,
		Entries: int64(last - first + 1), Size: size, Sealed: sealed, Compacted: compacted,
		Chunks: []WALChunk{{Size: uint32(size)}}}
	r.BLAKE3[0] = sum
	return r
}

func TestWALRecordMerge(t *testing.T) {
	a1 := walreplay.SegmentName(1)
	a2 := walreplay.SegmentName(101)
	tests := []struct {
		name string
		in   [][]WALSegmentRecord // one slice per wal/ file, merged in order
		want []WALSegmentRecord   // Segments() of the result
	}{
		{"empty", nil, []WALSegmentRecord{}},
		{"longest wins", [][]WALSegmentRecord{{seg(a1, 1, 50, 500, false, false, 1)}, {seg(a1, 1, 80, 800, false, false, 2)}},
			[]WALSegmentRecord{seg(a1, 1, 80, 800, false, false, 2)}},
		{"order does not matter", [][]WALSegmentRecord{{seg(a1, 1, 80, 800, false, false, 2)}, {seg(a1, 1, 50, 500, false, false, 1)}},
			[]WALSegmentRecord{seg(a1, 1, 80, 800, false, false, 2)}},
		{"sealed wins at equal size", [][]WALSegmentRecord{{seg(a1, 1, 80, 800, true, false, 2)}, {seg(a1, 1, 80, 800, false, false, 2)}},
			[]WALSegmentRecord{seg(a1, 1, 80, 800, true, false, 2)}},
		{"tie broken by digest", [][]WALSegmentRecord{{seg(a1, 1, 80, 800, true, false, 9)}, {seg(a1, 1, 80, 800, true, false, 3)}},
			[]WALSegmentRecord{seg(a1, 1, 80, 800, true, false, 3)}},
		{"compacted kept beside the original", [][]WALSegmentRecord{
			{seg(a1, 1, 100, 1000, true, false, 1), seg(a2, 101, 150, 500, false, false, 1)},
			{seg(a1, 1, 100, 300, true, true, 4)}},
			[]WALSegmentRecord{seg(a1, 1, 100, 1000, true, false, 1), seg(a2, 101, 150, 500, false, false, 1), seg(a1, 1, 100, 300, true, true, 4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWALArchive(Legacy("s"))
			for _, f := range tc.in {
				w.merge(f)
			}
			got := w.Segments()
			if !slices.EqualFunc(got, tc.want, func(a, b WALSegmentRecord) bool {
				return a.Name == b.Name && a.Size == b.Size && a.Sealed == b.Sealed && a.Compacted == b.Compacted && a.BLAKE3 == b.BLAKE3 && a.LastSeq == b.LastSeq
			}) {
				t.Fatalf("merged:\n%+v\nwant:\n%+v", got, tc.want)
			}
		})
	}
}

func TestWALRunsAndGaps(t *testing.T) {
	tests := []struct {
		name string
		recs []WALSegmentRecord
		want []WALRun
		end  uint64
	}{
		{"one run", []WALSegmentRecord{seg("wal-0000000000000001.log", 1, 100, 1, true, false, 0), seg("wal-0000000000000065.log", 101, 150, 1, false, false, 0)},
			[]WALRun{{1, 150, 10, 1500, 2}}, 150},
		{"gap", []WALSegmentRecord{seg("wal-0000000000000001.log", 1, 100, 1, true, false, 0), seg("wal-00000000000000c9.log", 201, 250, 1, false, false, 0)},
			[]WALRun{{1, 100, 10, 1000, 1}, {201, 250, 2010, 2500, 1}}, 250},
		{"compacted records are not part of the chain", []WALSegmentRecord{seg("wal-0000000000000001.log", 1, 100, 1, true, true, 0), seg("wal-0000000000000065.log", 101, 150, 1, false, false, 0)},
			[]WALRun{{101, 150, 1010, 1500, 1}}, 150},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWALArchive(Legacy("s"))
			w.merge(tc.recs)
			if got := w.Runs(); !slices.Equal(got, tc.want) {
				t.Fatalf("runs %+v, want %+v", got, tc.want)
			}
			if end, _ := w.End(); end != tc.end {
				t.Fatalf("end %d, want %d", end, tc.end)
			}
		})
	}
}
