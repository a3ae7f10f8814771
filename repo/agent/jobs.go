package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dustin/go-humanize/english"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/maintenance"
	"memento/repo/replicate"
	"memento/repo/verify"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// audit appends rec to the repository's audit trail, as the CLI commands do
// (nothing on read-only storage; a failure to append is logged).
func (a *Agent) audit(ctx context.Context, r *repo.Repository, rec repo.AuditRecord, err error) {
	if r.ReadOnlyStorage() {
		return
	}
	if err != nil {
		rec.Result, rec.Error = repo.AuditFailed, err.Error()
	} else if rec.Result == "" {
		rec.Result = repo.AuditOK
	}
	if _, aerr := r.AppendAudit(context.WithoutCancel(ctx), rec); aerr != nil {
		a.log.Warn("could not append to the audit trail", "command", rec.Command, "err", aerr)
	}
}

// backupSpace backs up one space as `memento backup --data-dir DIR --space
// ID` does: WAL positions and state digest in the manifest
// (backup.EngramRecorder), the latest snapshot as parent. Cancelled, it
// saves no snapshot (backup.Backup's semantics).
func (a *Agent) backupSpace(ctx context.Context, r *repo.Repository, pipe *chunk.Pipeline, space string) (jobResult, error) {
	opts := backup.BackupOptions{Space: space, DataDir: a.cfg.DataDir, Tags: []string{"agent"}, Pipeline: pipe, Progress: &repo.Progress{}}
	if hook := a.opts.AfterBackupFiles; hook != nil {
		opts.AfterFiles = func() error {
			hook(space)
			return ctx.Err()
		}
	}
	sn, err := backup.BackupSpace(ctx, r, opts, backup.SpaceOptions{Replays: a.replays})
	arec := repo.AuditRecord{Command: "backup", Space: space}
	var res jobResult
	if sn != nil {
		s := sn.Summary
		arec.Snapshot = sn.ID.String()
		arec.Figures = repo.Figures{"files": repo.Int(s.Files), "bytes": repo.Int(s.Bytes), "new_bytes": repo.Int(s.NewBytes),
			"stored_bytes": repo.Int(s.StoredBytes), "seconds": repo.Float(s.Seconds)}
		if sn.Engram != nil {
			arec.Figures["wal_end_seq"] = repo.Int(sn.Engram.WALEnd.Seq)
		}
		res = jobResult{read: int64(s.Bytes), added: int64(s.StoredBytes), detail: "snapshot " + sn.ID.Short()}
	}
	if ctx.Err() == nil {
		a.audit(ctx, r, arec, err)
	}
	if err != nil && sn != nil && errors.Is(err, repo.ErrMarkedDamaged) {
		return res, fmt.Errorf("space %s: snapshot %s saved but marked damaged: %w", space, sn.ID.Short(), err)
	}
	if err != nil {
		return res, fmt.Errorf("space %s: %w", space, err)
	}
	return res, nil
}

// policy is the retention policy of the configuration.
func (a *Agent) policy() maintenance.RetentionPolicy {
	return maintenance.RetentionPolicy{Daily: a.cfg.Retention.Daily, Weekly: a.cfg.Retention.Weekly,
		Monthly: a.cfg.Retention.Monthly, Min: a.cfg.Retention.Min}
}

// forgetSpace applies the retention policy to one space, as `memento forget
// --space ID --keep-daily D --keep-weekly W --keep-monthly M --keep-min N`.
// A policy with no count rule (all 0) keeps everything: nothing to do.
func (a *Agent) forgetSpace(ctx context.Context, r *repo.Repository, space string) (jobResult, error) {
	p := a.policy()
	if p.Empty() {
		return jobResult{detail: "no retention rule: everything kept"}, nil
	}
	res, err := maintenance.Forget(ctx, r, maintenance.ForgetOptions{Policy: p, Spaces: []string{space}, Location: time.UTC})
	if err != nil {
		return jobResult{}, fmt.Errorf("space %s: %w", space, err)
	}
	kept := 0
	for _, g := range res.Groups {
		kept += len(g.Keep)
	}
	return jobResult{detail: fmt.Sprintf("%d removed, %d kept", len(res.Removed), kept)}, nil
}

// runPrune prunes, as a job of the session: phase 1 beside archiving and
// the other jobs, the exclusive section once pause (the scheduler's
// pauseForPrune) has stopped them. It reports whether the prune succeeded.
func (a *Agent) runPrune(ctx context.Context, r *repo.Repository, pause func(context.Context) ([]*repo.Lock, func(), error)) bool {
	a.mu.Lock()
	js := a.jobs[jobKey{JobPrune, ""}]
	if js == nil {
		js = &jobState{}
		a.jobs[jobKey{JobPrune, ""}] = js
	}
	js.running = true
	a.mu.Unlock()
	start := time.Now()
	res, err := maintenance.Prune(ctx, r, maintenance.PruneOptions{MaxUnused: 0.10, Pause: pause, BetweenPhases: a.opts.PruneBetweenPhases})
	if ctx.Err() != nil {
		a.mu.Lock()
		js.running = false
		js.retryAt = time.Now()
		a.mu.Unlock()
		return false
	}
	rec := repo.AuditRecord{Command: "prune"}
	var jr jobResult
	if res != nil {
		rec.Figures = maintenance.PruneFigures(res)
		jr = jobResult{read: res.BytesRepacked, detail: fmt.Sprintf("%d %s deleted, %d repacked", res.PacksDeleted, english.PluralWord(res.PacksDeleted, "pack", ""), res.PacksRepacked)}
		if ex := res.Exclusive; ex != nil {
			a.mu.Lock()
			paused := a.prunePause
			a.mu.Unlock()
			jr.detail += fmt.Sprintf("; exclusive %.3fs (catch-up %.3fs), WAL archiving paused %.3fs", ex.Seconds, ex.CatchUpSeconds, paused.Seconds())
		}
	}
	if errors.Is(err, repo.ErrLocked) && a.lockedBriefly(start) {
		// Another process (a backup by hand, a `wal watch`) holds a lock:
		// wait for a quiet moment; a failure only once that lasted a
		// whole schedule period.
		a.mu.Lock()
		js.running = false
		js.retryAt = time.Now().Add(a.opts.RetryMin)
		a.mu.Unlock()
		a.log.Warn("prune waits: the repository is locked by another process", "err", err, "retry_in", a.opts.RetryMin)
		return false
	}
	a.mu.Lock()
	a.pruneLockedSince = time.Time{}
	a.mu.Unlock()
	a.audit(ctx, r, rec, err)
	a.record(JobPrune, "", start, time.Since(start), jr, err)
	// No refreshRepoState here: the session that follows does it once its
	// watcher has resumed archiving (listing every file of the repository
	// took up to a second under I/O load, all of it added to the pause).
	return err == nil
}

// lockedBriefly reports whether prune has found the repository locked by
// another process for less than one period of its schedule (it remembers
// since when).
func (a *Agent) lockedBriefly(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pruneLockedSince.IsZero() {
		a.pruneLockedSince = now
	}
	period := time.Hour
	if s := a.sched[JobPrune]; s != nil {
		n := s.Next(now.UTC())
		period = s.Next(n).Sub(n)
	}
	return now.Sub(a.pruneLockedSince) < period
}

// compactSpace compacts a space's WAL when it has more sealed segments than
// wal_compact_threshold, never past what the repository has archived
// (walarchive.CompactWAL without Force). A read-only data dir turns
// compaction off, logged once.
func (a *Agent) compactSpace(ctx context.Context, r *repo.Repository, space string) (jobResult, error) {
	a.mu.Lock()
	ro := a.compactRO
	a.mu.Unlock()
	if ro {
		return jobResult{detail: "data dir read-only: compaction off"}, nil
	}
	segs, err := walreplay.ListSegments(filepath.Join(a.cfg.DataDir, "spaces", space, "wal"))
	if err != nil {
		return jobResult{}, fmt.Errorf("space %s: %w", space, err)
	}
	sealed := len(segs) - 1
	if sealed <= a.cfg.WALCompactThreshold {
		return jobResult{detail: fmt.Sprintf("%d sealed segments, threshold %d", max(sealed, 0), a.cfg.WALCompactThreshold)}, nil
	}
	res, err := walarchive.CompactWAL(ctx, r, a.cfg.DataDir, space, walarchive.CompactOptions{Grace: 7 * 24 * time.Hour})
	if err != nil && (errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)) {
		a.mu.Lock()
		a.compactRO = true
		a.mu.Unlock()
		a.log.Warn("the data dir is read-only: WAL compaction is off", "space", space, "err", err)
		return jobResult{detail: "data dir read-only: compaction off"}, nil
	}
	if err != nil {
		return jobResult{}, err
	}
	return jobResult{read: res.BytesBefore, detail: fmt.Sprintf("compacted %d segments (seq %d..%d) into %s", res.Segments, res.FirstSeq, res.LastSeq, res.Name)}, nil
}

// verifyScheduled runs what the verification policy says is due, as
// `memento verify --schedule` (verify.PlanSchedule, verify.DefaultSchedule);
// each verdict goes to the audit trail with its slot.
func (a *Agent) verifyScheduled(ctx context.Context, r *repo.Repository) (jobResult, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return jobResult{}, err
	}
	recs, _, err := r.AuditLog(ctx, time.Time{})
	if err != nil {
		return jobResult{}, err
	}
	tasks := verify.PlanSchedule(time.Now(), snaps, recs, verify.DefaultSchedule, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)))
	var res jobResult
	failed, total := 0, 0
	for _, t := range tasks {
		vds, err := verify.VerifySnapshots(ctx, r, t.Snapshots, verify.VerifyOptions{Level: t.Level, Workers: heavyWorkers()})
		for _, vd := range vds {
			total++
			a.audit(ctx, r, vd.AuditRecord(t.Slot), nil)
			res.read += int64(vd.Figures["bytes_read"])
			a.mu.Lock()
			a.space(vd.Space).verified[vd.Level.String()] = verifyState{time: time.Now(), passed: vd.Passed, snap: vd.Snapshot}
			a.mu.Unlock()
			v := 0.0
			if vd.Passed {
				v = 1
			} else {
				failed++
			}
			a.m.verify.WithLabelValues(vd.Space, vd.Level.String()).Set(v)
		}
		if err != nil {
			return res, err
		}
	}
	res.detail = english.Plural(total, "verification", "")
	if failed > 0 {
		return res, fmt.Errorf("%w: %d of %d verifications failed (see 'memento log')", repo.ErrCorrupt, failed, total)
	}
	return res, nil
}

// replicateAll copies the repository to every destination, as `memento
// replicate --to ... --bwlimit LIMIT` (the limit shared by all).
func (a *Agent) replicateAll(ctx context.Context, r *repo.Repository) (jobResult, error) {
	var dsts []repo.Backend
	var names []string
	var errs []error
	for _, to := range a.cfg.Replicate.To {
		d, err := a.opts.Destination(ctx, to)
		if err != nil {
			errs = append(errs, fmt.Errorf("destination %s: %w", redact(to), err))
			a.replDone(redact(to), err)
			continue
		}
		dsts = append(dsts, d)
		names = append(names, redact(to))
	}
	var res jobResult
	if len(dsts) > 0 {
		stats, err := replicate.ReplicateAll(ctx, r.Backend(), dsts, replicate.ReplicateOptions{Parallel: 4, BytesPerSecond: a.rate, Logger: a.log})
		for _, d := range dsts {
			closeBackend(d, a.log)
		}
		var files, bytes int64
		for i, st := range stats {
			files += st.Files
			bytes += st.Bytes
			var derr error
			if st.Error != "" {
				derr = errors.New(st.Error)
			}
			if i < len(names) {
				a.replDone(names[i], derr)
			}
		}
		if err != nil && len(stats) == 0 {
			for _, n := range names {
				a.replDone(n, err)
			}
		}
		res = jobResult{read: bytes, detail: fmt.Sprintf("%d %s (%d bytes) copied", files, english.PluralWord(int(files), "file", ""), bytes)}
		a.audit(ctx, r, repo.AuditRecord{Command: "replicate", Figures: repo.Figures{"files": repo.Int(files), "bytes": repo.Int(bytes),
			"destinations": repo.Int(len(dsts))}}, err)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// closeBackend closes be if it holds resources (a local backend's open
// packs, the io_uring of its fsyncs): the agent lives long and opens a
// backend per session and per replication run.
func closeBackend(be repo.Backend, log *slog.Logger) {
	if c, ok := be.(io.Closer); ok {
		if err := c.Close(); err != nil {
			log.Warn("closing a backend", "location", redact(be.Location()), "err", err)
		}
	}
}

func (a *Agent) replDone(remote string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.repl[remote]
	if st == nil {
		st = &replState{since: time.Now()}
		a.repl[remote] = st
	}
	if err != nil {
		if st.lastErr == "" {
			st.since = time.Now()
			if !st.lastComplete.IsZero() {
				st.since = st.lastComplete
			}
		}
		st.lastErr = oneLine(err.Error())
		return
	}
	st.lastErr, st.lastComplete, st.since = "", time.Now(), time.Now()
}
