package verify

import (
	"testing"

	"memento/repo"
	"memento/walreplay"
)

// FuzzCheckEngram feeds untrusted checkpoint.json bytes and segment figures
// (both come from the repository) to the L3 structure checks: they must
// never panic, and a checkpoint that is not {"sequence","timestamp_ns"}
// must always be a finding.
func FuzzCheckEngram(f *testing.F) {
	f.Add([]byte(`{"sequence":5,"timestamp_ns":1}`), uint64(1), uint64(10), uint64(11), uint64(20))
	f.Add([]byte(`{"sequence":`), uint64(1), uint64(0), uint64(0), uint64(0))
	f.Add([]byte(`null`), uint64(3), uint64(2), uint64(1), uint64(1<<63))
	f.Fuzz(func(t *testing.T, cp []byte, a1, aLast, b1, bLast uint64) {
		sn := &repo.Snapshot{Manifest: repo.Manifest{Space: "s", Engram: &repo.EngramInfo{WALEnd: repo.WALPosition{Seq: bLast}}}}
		types := map[string]string{"metadata.json": repo.NodeFile, "spaces/s": repo.NodeDir, "spaces/s/wal": repo.NodeDir}
		segs := []*segResult{
			{name: walreplay.SegmentName(a1), nameSeq: a1, sum: walreplay.Summary{Entries: 1, FirstSeq: a1, LastSeq: aLast}},
			{name: walreplay.SegmentName(b1), nameSeq: b1, sum: walreplay.Summary{Entries: 1, FirstSeq: b1, LastSeq: bLast}},
		}
		vd := &Verdict{Figures: map[string]float64{}}
		checkEngram(vd, L3, sn, types, segs, cp, true)
	})
}

func FuzzParseSubsetShare(f *testing.F) {
	for _, s := range []string{"10%", "1/10", "0.5%", "1/0", "%", "1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSubsetShare(s)
		if err == nil && (n < 1 || n > 1<<20) {
			t.Fatalf("ParseSubsetShare(%q) = %d", s, n)
		}
	})
}
