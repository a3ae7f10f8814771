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
// the first sample showing it archived (ok false: no sample did), and
// whether the samples show it archived by the second archive run that
// completed after it was on disk (late: they show it was not).
type batchLag struct {
	wall   time.Duration
	ok     bool
	judged bool // the samples reach the second run after the flush
	late   bool
}

// batchLags matches each flushed batch of space with the samples of space
// (in time order). Within 2 runs: take the first sample at or after the
// flush (its run count, R, was read after the flush: run R+1 may have
// listed the WAL before the flush, run R+2 started after run R+1 ended, so
// after the flush) and the first sample whose run count reaches R+2; the
// sample after that one shows every entry run R+2 archived (a run sets the
// archived sequence before it counts itself, but one scrape reads the two
// metrics in no fixed order, so the sample counting a run may still show
// the sequence from before it).
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
		l := batchLag{}
		for j := i; j < len(samples); j++ {
			if samples[j].seq >= b.Sequence {
				l.wall, l.ok = samples[j].t.Sub(b.Time), true
				break
			}
		}
		for j := i; j+1 < len(samples); j++ {
			if samples[j].runs >= samples[i].runs+2 {
				l.judged, l.late = true, samples[j+1].seq < b.Sequence
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
