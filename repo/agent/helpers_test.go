package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/repotest"
)

// engramSim is the engram-sim binary, built once by TestMain.
var engramSim string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "memento-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	engramSim = filepath.Join(dir, "engram-sim")
	cmd := exec.Command("go", "build", "-o", engramSim, "memento/cmd/engram-sim")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build engram-sim: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sim runs engram-sim to completion.
func sim(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(engramSim, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("engram-sim %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// liveSim starts `engram-sim run` writing dd (for 10 minutes unless extra
// says otherwise; extra are more flags, e.g. --fsync-log); the returned func
// stops it with SIGTERM (a clean stop) and waits.
func liveSim(t testing.TB, dd string, rate int, extra ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command(engramSim, liveSimArgs(dd, rate, extra...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("engram-sim run: %v\n%s", err, errb.String())
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// liveSimArgs are the arguments of engram-sim run for liveSim.
func liveSimArgs(dd string, rate int, extra ...string) []string {
	return append([]string{"run", "--dir", dd, "--rate", strconv.Itoa(rate), "--duration", "10m",
		"--segment-size", "32KiB", "--dim", "16", "--checkpoint-every", "500ms"}, extra...)
}

// testData generates a data dir of two spaces.
func testData(t testing.TB) string {
	dd := filepath.Join(t.TempDir(), "data")
	sim(t, "generate", "--dir", dd, "--size", "3MB", "--spaces", "2", "--segment-size", "64KiB", "--dim", "16", "--seed", "3")
	return dd
}

// testConfig is a configuration with compressed schedules.
func testConfig(dd, repoDir string) Config {
	c := Defaults()
	c.DataDir, c.Repository = dd, repoDir
	c.Schedules.Backup = "@every 3s"
	c.Schedules.Verify = "@every 4s"
	c.Schedules.Prune = "@every 10s"
	c.Schedules.WALCompact = "@every 2s"
	c.Schedules.Replicate = ""
	c.Retention.Daily, c.Retention.Weekly, c.Retention.Monthly, c.Retention.Min = 1, 0, 0, 2
	c.WALCompactThreshold = 2
	// Readiness, not the RPO, is what these tests judge through /readyz:
	// a budget of a few seconds turns the agent unready whenever a loaded
	// machine stretches one archive run past it (TestAgentRunsEverything
	// failed so at load 30: "RPO lag 5.329s above the budget 5s"). The lag
	// itself is measured by BenchmarkAgentRPO (`make bench-rpo`).
	c.WAL.RPOBudget = Duration(60 * time.Second)
	return c
}

// opener opens the test repository at dir as cmd/memento does.
func opener(tr *repotest.Repo) func(ctx context.Context) (*repo.Repository, error) {
	return func(ctx context.Context) (*repo.Repository, error) {
		be, err := local.Open(tr.Dir)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", repo.ErrNoRepository, err)
		}
		return repo.Open(ctx, be, repo.Options{Password: repotest.Password, CacheDir: tr.Cache})
	}
}

// running is an agent running in the test, with its HTTP handler served.
type running struct {
	a      *Agent
	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan error
	err    error
	exited bool
}

func start(t testing.TB, opts Options) *running {
	t.Helper()
	if opts.RetryMin == 0 {
		opts.RetryMin, opts.RetryMax = 200*time.Millisecond, 2*time.Second
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{a: a, srv: httptest.NewServer(a.Handler()), cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- a.Run(ctx) }()
	t.Cleanup(func() { rn.stop(t); rn.srv.Close() })
	return rn
}

// stop cancels the agent (SIGTERM's equivalent) and requires it to return
// nil within 5 s.
func (rn *running) stop(t testing.TB) {
	t.Helper()
	rn.cancel()
	if !rn.wait(5 * time.Second) {
		t.Fatal("the agent did not stop within 5s of its context's cancellation")
	}
	if rn.err != nil {
		t.Errorf("Run: %v", rn.err)
	}
}

// wait waits up to d for Run to return.
func (rn *running) wait(d time.Duration) bool {
	if rn.exited {
		return true
	}
	select {
	case rn.err = <-rn.done:
		rn.exited = true
		return true
	case <-time.After(d):
		return false
	}
}

func (rn *running) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(rn.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond every 100 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %s: %s; last: %s", d, what, last)
}

func (rn *running) waitReady(t testing.TB, want bool, d time.Duration) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("/readyz ready=%v", want), func() (bool, string) {
		code, body := rn.get(t, "/readyz")
		return (code == 200) == want, fmt.Sprintf("%d %s", code, body)
	})
}

// metricValues returns the values of a metric by its label string, e.g.
// `{space="space-a",task="backup"}`.
func metricValues(body, name string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name) || strings.HasPrefix(l, "#") {
			continue
		}
		rest := l[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		i := strings.LastIndexByte(rest, ' ')
		v, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			continue
		}
		out[strings.TrimSpace(rest[:i])] = v
	}
	return out
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}
