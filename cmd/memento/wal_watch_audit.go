package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"memento/repo"
	"memento/repo/walarchive"
)

// defaultWatchAuditEvery is how often at most wal watch records a space's
// archive runs in the audit trail while they succeed: a record per run
// would be a file a second.
const defaultWatchAuditEvery = 15 * time.Minute

// watchAudit is wal watch's audit trail and its info lines. Each archive
// record of a space sums the runs since the previous one (runs,
// failed_runs, segments, new_bytes, stored_bytes, seconds) and says where
// the archive ends (last_seq). A record is written:
//   - after a run that archived something, when the space's last record is
//     older than --audit-every (so the first such run at once);
//   - after a failed run that follows a successful one (or is the first),
//     with its error: a failure is in the trail at once, a failure that
//     repeats every poll is not a record every poll;
//   - when the watch stops, for the runs not recorded yet.
type watchAudit struct {
	a     *app
	r     *repo.Repository
	every time.Duration

	mu     sync.Mutex
	spaces map[string]*watchTally
}

type watchTally struct {
	last                   time.Time // of the last record
	runs, failed, segments int64
	newBytes, storedBytes  int64
	lastSeq                uint64
	seconds                float64
	lastErr                error
	failing                bool // the last recorded run failed
	pending                bool // runs since the last record that archived something or failed
}

func newWatchAudit(a *app, r *repo.Repository, every time.Duration) *watchAudit {
	return &watchAudit{a: a, r: r, every: every, spaces: map[string]*watchTally{}}
}

// observe is called after every archive run (walarchive.WatchOptions.Observe).
func (w *watchAudit) observe(ctx context.Context, space string, res *walarchive.WALArchiveResult, err error, now time.Time) {
	if err == nil && res != nil && res.Segments > 0 {
		w.a.log.Info("archived", "space", space, "segments", res.Segments, "bytes", strings.ReplaceAll(humanize.IBytes(uint64(max(res.NewBytes, 0))), " ", ""),
			"last_seq", res.LastSeq, "seconds", res.Seconds)
	}
	w.mu.Lock()
	t := w.spaces[space]
	if t == nil {
		t = &watchTally{}
		w.spaces[space] = t
	}
	t.runs++
	if res != nil {
		t.segments += int64(res.Segments)
		t.newBytes += res.NewBytes
		t.storedBytes += res.StoredBytes
		t.seconds += res.Seconds
		if res.LastSeq > t.lastSeq {
			t.lastSeq = res.LastSeq
		}
	}
	var record bool
	if err != nil {
		t.failed++
		t.lastErr = err
		t.pending = true
		record = !t.failing
		t.failing = true
	} else {
		t.lastErr = nil
		if res != nil && res.Segments > 0 {
			t.pending = true
			record = now.Sub(t.last) >= w.every
		}
		t.failing = false
	}
	var rec repo.AuditRecord
	if record {
		rec = w.take(space, t, now)
	}
	w.mu.Unlock()
	if record {
		w.a.auditNow(ctx, w.r, rec)
	}
}

// take builds the record of t's runs and starts a new tally; w.mu is held.
func (w *watchAudit) take(space string, t *watchTally, now time.Time) repo.AuditRecord {
	rec := repo.AuditRecord{Command: "archive", Space: space, Figures: repo.Figures{
		"runs": repo.Int(t.runs), "failed_runs": repo.Int(t.failed), "segments": repo.Int(t.segments),
		"new_bytes": repo.Int(t.newBytes), "stored_bytes": repo.Int(t.storedBytes), "last_seq": repo.Int(t.lastSeq),
		"seconds": repo.Float(t.seconds)}}
	rec = auditResult(rec, t.lastErr)
	*t = watchTally{last: now, lastSeq: t.lastSeq, failing: t.failing}
	return rec
}

// flush records the runs not recorded yet (the watch is stopping).
func (w *watchAudit) flush(ctx context.Context) {
	w.mu.Lock()
	var recs []repo.AuditRecord
	for space, t := range w.spaces {
		if t.pending {
			recs = append(recs, w.take(space, t, time.Now()))
		}
	}
	w.mu.Unlock()
	for _, rec := range recs {
		w.a.auditNow(ctx, w.r, rec)
	}
}
