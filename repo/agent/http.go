package agent

import (
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"memento/repo/pitr"
	"memento/repo/restore"
	"memento/walreplay"
)

// stuckAfter is how long the scheduler loop may make no progress before
// /healthz fails.
const stuckAfter = 5 * time.Minute

// Handler serves /metrics, /healthz, /readyz and the status page at /.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("/healthz", a.healthz)
	mux.HandleFunc("/readyz", a.readyz)
	mux.HandleFunc("/{$}", a.status)
	return mux
}

func (a *Agent) healthz(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	last := a.lastLoop
	session := a.cur != nil
	a.mu.Unlock()
	if session && !last.IsZero() && time.Since(last) > stuckAfter {
		http.Error(w, fmt.Sprintf("scheduler loop stuck: no progress for %s", time.Since(last).Round(time.Second)), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// NotReady returns why the agent is not ready, nil when it is: the
// repository open under the agent's lock, every space's first archive run
// done and its last one successful (archiving is not blocked), every space's
// RPO lag within wal.rpo_budget, and with backups scheduled every space's
// latest snapshot no older than two schedule periods.
func (a *Agent) NotReady(now time.Time) []string {
	lags := a.rpoLags(now)
	spaces, _, _ := a.opts.ListSpaces(a.cfg.DataDir)
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	if a.cur == nil {
		out = append(out, a.repoErr)
	} else if a.cur != nil && a.probeErr != "" {
		out = append(out, "repository unreachable: "+a.probeErr)
	}
	budget := time.Duration(a.cfg.WAL.RPOBudget)
	period := a.intervals[JobBackup] // 0: backups off
	for _, sp := range spaces {
		st := a.space(sp)
		switch {
		case st.archiveOKStart.IsZero() && st.archiveErr == "":
			out = append(out, fmt.Sprintf("space %s: first WAL archive run not done yet", sp))
		case !st.archiveOK:
			out = append(out, fmt.Sprintf("space %s: WAL archiving blocked: %s", sp, st.archiveErr))
		}
		if lag := lags[sp]; lag > budget {
			out = append(out, fmt.Sprintf("space %s: RPO lag %s above the budget %s", sp, lag.Round(time.Millisecond), budget))
		}
		if period > 0 {
			switch {
			case st.latest == nil:
				out = append(out, fmt.Sprintf("space %s: no backup yet", sp))
			case now.Sub(st.latest.Time) > 2*period+time.Minute:
				out = append(out, fmt.Sprintf("space %s: last backup %s ago, schedule every %s", sp, now.Sub(st.latest.Time).Round(time.Second), period))
			}
		}
	}
	return out
}

func (a *Agent) readyz(w http.ResponseWriter, _ *http.Request) {
	if reasons := a.NotReady(time.Now()); len(reasons) > 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, r := range reasons {
			fmt.Fprintln(w, r)
		}
		return
	}
	fmt.Fprintln(w, "ready")
}

// rangeCache keeps the recoverable ranges of each space for a few seconds:
// computing them reads the WAL archive's records.
type rangeCache struct {
	mu     sync.Mutex
	at     time.Time
	ranges map[string][]pitr.PITRRange
}

func (c *rangeCache) invalidate() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

func (a *Agent) pitrRanges(ctx context.Context, spaces []string) map[string][]pitr.PITRRange {
	a.mu.Lock()
	r := a.cur
	a.mu.Unlock()
	c := &a.ranges
	c.mu.Lock()
	cached, fresh := c.ranges, time.Since(c.at) < 5*time.Second
	c.mu.Unlock()
	if r == nil || fresh {
		return cached
	}
	// Computed without holding the cache's lock: refreshRepoState may
	// invalidate it meanwhile, and must not wait for this.
	out := map[string][]pitr.PITRRange{}
	p := pitr.NewPlanner(restore.Fetcher(r))
	for _, sp := range spaces {
		rs, _, err := p.PITRRanges(ctx, r, sp)
		if err != nil {
			a.log.Debug("pitr ranges", "space", sp, "err", err)
			continue
		}
		out[sp] = rs
	}
	c.mu.Lock()
	c.ranges, c.at = out, time.Now()
	c.mu.Unlock()
	return out
}

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	},
}).Parse(statusHTML))

type statusPage struct {
	Now       time.Time
	DataDir   string
	Repo      string
	Ready     bool
	NotReady  []string
	Spaces    []spaceView
	Jobs      []jobView
	Next      []nextView
	RepoBytes int64
}

type spaceView struct {
	Name       string
	LastBackup time.Time
	Snapshot   string
	Snapshots  int
	RPOLag     string
	ArchiveErr string
	Archived   string
	Verify     []verifyView
	Ranges     []string
	Timeline   timeline
}

type verifyView struct {
	Level, Result, Snapshot string
	Time                    time.Time
}

type jobView struct {
	Job, Space, Result, Detail, Error string
	Start                             time.Time
	Duration                          string
	Failures                          int
	Retry                             time.Time
}

type nextView struct {
	Job  string
	Next time.Time
}

// timeline is the inline SVG of a space's recoverable ranges.
type timeline struct {
	Width, Height int
	Bars          []bar
	From, To      string
}

type bar struct {
	X, W  float64
	Title string
}

const tlWidth = 600

func makeTimeline(rs []pitr.PITRRange) timeline {
	tl := timeline{Width: tlWidth, Height: 24}
	if len(rs) == 0 {
		return tl
	}
	lo, hi := rs[0].FromTS, rs[0].ToTS
	for _, g := range rs {
		lo, hi = min(lo, g.FromTS), max(hi, g.ToTS)
	}
	span := float64(max(hi-lo, 1))
	for _, g := range rs {
		x := float64(g.FromTS-lo) / span * tlWidth
		w := max(float64(g.ToTS-g.FromTS)/span*tlWidth, 2)
		tl.Bars = append(tl.Bars, bar{X: x, W: w, Title: g.String()})
	}
	tl.From, tl.To = walreplay.FormatTime(lo), walreplay.FormatTime(hi)
	return tl
}

func (a *Agent) status(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	notReady := a.NotReady(now)
	spaces, _, _ := a.opts.ListSpaces(a.cfg.DataDir)
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	ranges := a.pitrRanges(ctx, spaces)
	lags := a.rpoLags(now)
	a.mu.Lock()
	p := statusPage{Now: now.UTC(), DataDir: a.cfg.DataDir, Repo: redact(a.cfg.Repository), Ready: len(notReady) == 0, NotReady: notReady, RepoBytes: a.repoSize}
	for _, sp := range spaces {
		st := a.space(sp)
		v := spaceView{Name: sp, Snapshots: st.snapshots, RPOLag: lags[sp].Round(time.Millisecond).String(), ArchiveErr: st.archiveErr}
		if st.latest != nil {
			v.LastBackup, v.Snapshot = st.latest.Time, st.latest.ID.Short()
		}
		if st.archivedSeq > 0 {
			v.Archived = fmt.Sprintf("seq %d (%s)", st.archivedSeq, walreplay.FormatTime(st.archivedTS))
		}
		for _, lvl := range sortedKeys(st.verified) {
			vs := st.verified[lvl]
			res := "passed"
			if !vs.passed {
				res = "FAILED"
			}
			v.Verify = append(v.Verify, verifyView{Level: lvl, Result: res, Snapshot: shortID(vs.snap), Time: vs.time})
		}
		for _, g := range ranges[sp] {
			v.Ranges = append(v.Ranges, g.String())
		}
		v.Timeline = makeTimeline(ranges[sp])
		p.Spaces = append(p.Spaces, v)
	}
	for k, js := range a.jobs {
		if js.lastStart.IsZero() && !js.running && js.retryAt.IsZero() {
			continue
		}
		jv := jobView{Job: k.job, Space: k.space, Detail: js.detail, Error: js.lastErr, Start: js.lastStart,
			Duration: js.lastDur.Round(time.Millisecond).String(), Failures: js.failures, Retry: js.retryAt}
		switch {
		case js.running:
			jv.Result = "running"
		case js.lastStart.IsZero():
			jv.Result = "-"
		case js.lastErr != "":
			jv.Result = "failed"
		default:
			jv.Result = "ok"
		}
		p.Jobs = append(p.Jobs, jv)
	}
	a.mu.Unlock()
	sort.Slice(p.Jobs, func(i, j int) bool {
		if p.Jobs[i].Space != p.Jobs[j].Space {
			return p.Jobs[i].Space < p.Jobs[j].Space
		}
		return p.Jobs[i].Job < p.Jobs[j].Job
	})
	for _, job := range sortedKeys(a.sched) {
		p.Next = append(p.Next, nextView{Job: job, Next: a.sched[job].Next(now.UTC())})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := statusTmpl.Execute(w, p); err != nil {
		a.log.Error("status page", "err", err)
	}
}

func shortID(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
