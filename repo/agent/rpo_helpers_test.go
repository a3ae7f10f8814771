package agent

import (
	"bufio"
	"encoding/json"
	"os"
	"sort"
	"testing"
	"time"
)

// flushedBatch is one line of engram-sim's --fsync-log: the batch ending at
// Sequence was on disk (flushed) at Time.
type flushedBatch struct {
	Space    string
	Sequence uint64
	Time     time.Time
}

// readFlushLog reads engram-sim's --fsync-log.
func readFlushLog(t testing.TB, path string) []flushedBatch {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []flushedBatch
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Space    string `json:"space"`
			Sequence uint64 `json:"sequence"`
			FsyncNS  int64  `json:"fsync_ns"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // the last line of a killed writer may be cut
		}
		out = append(out, flushedBatch{Space: l.Space, Sequence: l.Sequence, Time: time.Unix(0, l.FsyncNS)})
	}
	return out
}

// archiveSample is what the agent said about one space at one instant: the
// archived sequence and the number of successful archive runs so far.
type archiveSample struct {
	t    time.Time
	seq  uint64
	runs uint64
}

// batchLag is how one flushed batch fared: the wall time from its flush to
// the first sample showing it archived, and how many archive runs completed
// from the first sample after its flush until then (ok is false when the
// samples end first: runs then counts the runs until the last sample).
type batchLag struct {
	wall time.Duration
	runs uint64
	ok   bool
}

// batchLags matches each flushed batch of space with the samples of space
// (in time order): the first sample at or after the flush, then the first
// sample whose archived sequence reaches the batch.
func batchLags(batches []flushedBatch, samples []archiveSample, space string) []batchLag {
	var out []batchLag
	for _, b := range batches {
		if b.Space != space {
			continue
		}
		i := sort.Search(len(samples), func(i int) bool { return !samples[i].t.Before(b.Time) })
		if i == len(samples) {
			continue // flushed after the last sample
		}
		l := batchLag{runs: samples[len(samples)-1].runs - samples[i].runs}
		for j := i; j < len(samples); j++ {
			if samples[j].seq >= b.Sequence {
				l = batchLag{wall: samples[j].t.Sub(b.Time), runs: samples[j].runs - samples[i].runs, ok: true}
				break
			}
		}
		out = append(out, l)
	}
	return out
}

// durPercentile is the p-quantile of ds (0 for none).
func durPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
