package agent

import (
	"context"
	"sync"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/walarchive"
)

// scheduler dispatches the jobs of one session: on their cron ticks, their
// retries after a failure, and a first backup of every space that has none.
type scheduler struct {
	a    *Agent
	r    *repo.Repository
	pipe *chunk.Pipeline
	ar   *walarchive.WALArchiver // the session's archiver, paused for prune's exclusive section
	lock *repo.Lock              // the session's shared lock
	wg   sync.WaitGroup
	done chan struct{} // a job finished: look again

	mu      sync.Mutex
	spaceMu map[string]*sync.Mutex
	running int
	heavy   chan struct{} // bounds the backups running at once
	// forgets serializes the agent's forget runs: each takes the manifest
	// lock (repo.LockManifests), which excludes another holder, and two
	// spaces' forgets at once would make one wait on the agent itself.
	forgets sync.Mutex
	// excl is set while a prune waits for or holds its exclusive section:
	// no job starts (their ticks are kept for after); granted is closed
	// once the prune is the only job running.
	excl    bool
	granted chan struct{}
}

// forget runs the retention of one space, one space at a time.
func (s *scheduler) forget(ctx context.Context, space string) (jobResult, error) {
	s.forgets.Lock()
	defer s.forgets.Unlock()
	return s.a.forgetSpace(ctx, s.r, space)
}

// maxBackups is how many spaces are backed up at once (as `backup --all`):
// they share the pipeline's workers.
const maxBackups = 4

// run dispatches until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	a := s.a
	s.spaceMu = map[string]*sync.Mutex{}
	s.heavy = make(chan struct{}, maxBackups)
	next := map[string]time.Time{}
	now := time.Now().UTC()
	for job, sc := range a.sched {
		next[job] = sc.Next(now)
	}
	var probed time.Time
	for {
		now = time.Now().UTC()
		a.mu.Lock()
		a.lastLoop = now
		a.mu.Unlock()
		if now.Sub(probed) >= probeEvery {
			probed = now
			a.probe(ctx, s.r)
		}
		excl := s.exclusive()
		if !excl {
			s.dispatchRetries(ctx, now)
			s.firstBackups(ctx)
		}
		for job, t := range next {
			if t.After(now) {
				continue
			}
			next[job] = a.sched[job].Next(now)
			if excl {
				// Not dropped: due again right after prune's exclusive section.
				a.markRetry(job, "", now)
				continue
			}
			s.dispatch(ctx, job)
		}
		wake := time.Second
		for _, t := range next {
			wake = min(wake, t.Sub(now))
		}
		t := time.NewTimer(max(wake, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.done:
		case <-t.C:
		}
		t.Stop()
	}
}

// exclusive reports whether a prune waits for or holds its exclusive
// section, and grants it once the prune is the only job running.
func (s *scheduler) exclusive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.excl && s.granted != nil && s.running == 1 {
		close(s.granted)
		s.granted = nil
	}
	return s.excl
}

// wake makes the loop look again.
func (s *scheduler) wake() {
	select {
	case s.done <- struct{}{}:
	default:
	}
}

// pauseForPrune is the agent's maintenance.PruneOptions.Pause: it stops
// starting jobs, waits for the running ones (but the prune) to end, then
// pauses WAL archiving (waiting for the runs in progress), and hands the
// session's lock to the prune to disregard. Resuming reloads the
// archiver's view of the repository (the prune rewrote archives and
// deleted packs) and lets archiving and the jobs go on.
func (s *scheduler) pauseForPrune(ctx context.Context) ([]*repo.Lock, func(), error) {
	s.mu.Lock()
	s.excl = true
	granted := make(chan struct{})
	s.granted = granted
	s.mu.Unlock()
	end := func() {
		s.mu.Lock()
		s.excl, s.granted = false, nil
		s.mu.Unlock()
		s.wake()
	}
	s.wake()
	select {
	case <-granted:
	case <-ctx.Done():
		end()
		return nil, nil, ctx.Err()
	}
	t0 := time.Now()
	resume := s.ar.Pause()
	s.a.mu.Lock()
	s.a.prunePause = 0
	s.a.mu.Unlock()
	return []*repo.Lock{s.lock}, func() {
		s.ar.Reload()
		resume()
		d := time.Since(t0)
		s.a.mu.Lock()
		s.a.prunePause = d
		s.a.mu.Unlock()
		s.a.log.Info("WAL archiving resumed after prune's exclusive section", "archiving_paused_seconds", d.Seconds())
		end()
	}, nil
}

// dispatch starts job for every space (per-space jobs) or once.
func (s *scheduler) dispatch(ctx context.Context, job string) {
	switch job {
	case JobBackup, JobWALCompact, JobForget:
		spaces, _, err := s.a.opts.ListSpaces(s.a.cfg.DataDir)
		if err != nil {
			s.a.log.Error("list spaces", "job", job, "err", err)
			s.a.record(job, "", time.Now(), 0, jobResult{}, err)
			s.a.markRetry(job, "", time.Now())
			return
		}
		for _, sp := range spaces {
			s.start(ctx, job, sp)
		}
	default:
		s.start(ctx, job, "")
	}
}

// dispatchRetries starts the jobs whose retry is due.
func (s *scheduler) dispatchRetries(ctx context.Context, now time.Time) {
	a := s.a
	var due []jobKey
	a.mu.Lock()
	for k, js := range a.jobs {
		if !js.retryAt.IsZero() && !js.retryAt.After(now) && !js.running {
			due = append(due, k)
		}
	}
	a.mu.Unlock()
	for _, k := range due {
		switch {
		case k.space == "" && (k.job == JobBackup || k.job == JobWALCompact || k.job == JobForget):
			a.clearRetry(k)
			s.dispatch(ctx, k.job)
		default:
			s.start(ctx, k.job, k.space)
		}
	}
}

// firstBackups starts a backup of every space the repository has no
// snapshot of: a space is unprotected until its first backup, whatever the
// schedule says. New spaces are picked up here without a restart.
func (s *scheduler) firstBackups(ctx context.Context) {
	a := s.a
	if a.sched[JobBackup] == nil {
		return
	}
	spaces, _, err := a.opts.ListSpaces(a.cfg.DataDir)
	if err != nil {
		return
	}
	for _, sp := range spaces {
		a.mu.Lock()
		st := a.space(sp)
		js := a.jobs[jobKey{JobBackup, sp}]
		need := st.snapshots == 0 && (js == nil || (!js.running && js.retryAt.IsZero() && js.lastSuccess.IsZero()))
		a.mu.Unlock()
		if need {
			s.start(ctx, JobBackup, sp)
		}
	}
}

// start runs job for space in the background unless it already runs.
func (s *scheduler) start(ctx context.Context, job, space string) {
	a := s.a
	k := jobKey{job, space}
	a.mu.Lock()
	js := a.jobs[k]
	if js == nil {
		js = &jobState{}
		a.jobs[k] = js
	}
	if js.running {
		a.mu.Unlock()
		a.log.Warn("job still running at its next tick; this tick is skipped", "job", job, "space", space)
		return
	}
	js.running, js.retryAt = true, time.Time{}
	a.mu.Unlock()
	s.mu.Lock()
	s.running++
	key := space
	if job == JobPrune {
		// Prune has a mutex of its own: a repository-wide job (verify,
		// replicate) started during its phase 1 must not wait for it,
		// since its exclusive section waits for every other job to end.
		key = "\x00prune"
	}
	m := s.spaceMu[key]
	if m == nil {
		m = &sync.Mutex{}
		s.spaceMu[key] = m
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			s.running--
			s.mu.Unlock()
			select {
			case s.done <- struct{}{}:
			default:
			}
		}()
		// Jobs of one space never overlap; repository-wide jobs (space "")
		// do not overlap each other either (prune aside).
		m.Lock()
		defer m.Unlock()
		if job == JobBackup {
			select {
			case s.heavy <- struct{}{}:
				defer func() { <-s.heavy }()
			case <-ctx.Done():
			}
		}
		s.exec(ctx, job, space)
	}()
}

// exec runs one job and records its result.
func (s *scheduler) exec(ctx context.Context, job, space string) {
	a := s.a
	start := time.Now()
	if job == JobPrune {
		a.runPrune(ctx, s.r, s.pauseForPrune)
		return
	}
	var res jobResult
	var err error
	if ctx.Err() == nil {
		switch job {
		case JobBackup:
			res, err = a.backupSpace(ctx, s.r, s.pipe, space)
		case JobForget:
			res, err = s.forget(ctx, space)
		case JobWALCompact:
			res, err = a.compactSpace(ctx, s.r, space)
		case JobVerify:
			res, err = a.verifyScheduled(ctx, s.r)
		case JobReplicate:
			res, err = a.replicateAll(ctx, s.r)
		}
	}
	if ctx.Err() != nil {
		// Stopped (SIGTERM, lost lock, prune): nothing partial was kept;
		// the job runs again in the next session.
		a.mu.Lock()
		js := a.jobs[jobKey{job, space}]
		js.running = false
		js.retryAt = time.Now()
		a.mu.Unlock()
		a.log.Info("job interrupted; it runs again in the next session", "job", job, "space", space)
		return
	}
	a.record(job, space, start, time.Since(start), res, err)
	if job == JobBackup && err == nil {
		// Retention after each backup of the space.
		fstart := time.Now()
		a.mu.Lock()
		fjs := a.jobs[jobKey{JobForget, space}]
		if fjs == nil {
			fjs = &jobState{}
			a.jobs[jobKey{JobForget, space}] = fjs
		}
		fjs.running = true
		a.mu.Unlock()
		fres, ferr := s.forget(ctx, space)
		if ctx.Err() != nil {
			a.mu.Lock()
			fjs.running, fjs.retryAt = false, time.Now()
			a.mu.Unlock()
			return
		}
		a.record(JobForget, space, fstart, time.Since(fstart), fres, ferr)
	}
	if job == JobForget || job == JobBackup || job == JobWALCompact {
		a.refreshRepoState(ctx, s.r, false)
	}
}

// record stores a run's result, logs it, updates the metrics and, after a
// failure, schedules the retry (exponential backoff, bounded by RetryMax).
func (a *Agent) record(job, space string, start time.Time, d time.Duration, res jobResult, err error) {
	a.m.observeJob(job, space, start, d, res, err)
	a.mu.Lock()
	defer a.mu.Unlock()
	js := a.jobs[jobKey{job, space}]
	if js == nil {
		js = &jobState{}
		a.jobs[jobKey{job, space}] = js
	}
	js.running, js.lastStart, js.lastDur = false, start, d
	end := start.Add(d)
	if err != nil {
		js.failures++
		js.lastFailure, js.lastErr = end, oneLine(err.Error())
		backoff := a.opts.RetryMin
		for i := 1; i < js.failures && backoff < a.opts.RetryMax; i++ {
			backoff *= 2
		}
		backoff = min(backoff, a.opts.RetryMax)
		js.retryAt = end.Add(backoff)
		a.log.Error("job failed; retrying with backoff", "job", job, "space", space, "err", err, "failures", js.failures, "retry_in", backoff)
		return
	}
	js.failures, js.lastErr, js.retryAt, js.lastSuccess = 0, "", time.Time{}, end
	if res.detail != "" {
		js.detail = res.detail
	}
	a.log.Info("job done", "job", job, "space", space, "seconds", d.Seconds(), "detail", res.detail)
}

// markRetry makes a job due again at t (a tick that fell during a prune).
func (a *Agent) markRetry(job, space string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	js := a.jobs[jobKey{job, space}]
	if js == nil {
		js = &jobState{}
		a.jobs[jobKey{job, space}] = js
	}
	if js.retryAt.IsZero() || js.retryAt.After(t) {
		js.retryAt = t
	}
}

func (a *Agent) clearRetry(k jobKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if js := a.jobs[k]; js != nil {
		js.retryAt = time.Time{}
	}
}

// probeEvery is how often the scheduler checks that the repository is
// reachable (one Stat of its config file), so that /readyz says so even when
// no WAL is written and no job runs.
const probeEvery = 5 * time.Second

func (a *Agent) probe(ctx context.Context, r *repo.Repository) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := r.Backend().Stat(pctx, repo.ConfigName)
	if ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.probeErr == "" {
			a.log.Error("the repository is unreachable", "err", err)
		}
		a.probeErr = oneLine(err.Error())
	} else {
		if a.probeErr != "" {
			a.log.Info("the repository is reachable again")
		}
		a.probeErr = ""
	}
}
