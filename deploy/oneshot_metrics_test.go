package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestOneShotBackupMetrics runs `memento backup` as the systemd timer and
// the Kubernetes CronJob do, with --metrics-textfile (node_exporter's
// textfile collector; promtool check metrics validates it) and with
// --metrics-push (a real HTTP server in the test receives the push), and
// checks the contract's job metrics: a success per space, a failed run that
// keeps the last success and records the failure, the interval, the bytes
// counting on, and a push refused by the gateway failing the run.
func TestOneShotBackupMetrics(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	e := newOpsEnv(t)
	e.tool("engram-sim", "generate", "--dir", e.data, "--size", "1M", "--spaces", "2", "--seed", "5", "--segment-size", "128KiB")
	e.tool("memento", "init")
	textfile := filepath.Join(e.dir, "node-exporter", "memento_backup.prom")
	if err := os.MkdirAll(filepath.Dir(textfile), 0o755); err != nil {
		t.Fatal(err)
	}
	memento := filepath.Join(e.bin, "memento")
	backup := func(env []string, args ...string) (string, int) {
		t.Helper()
		return runCode(t, e.dir, append(append([]string(nil), e.env...), env...), memento,
			append([]string{"-q", "backup", "--data-dir", e.data, "--all"}, args...)...)
	}

	before := float64(time.Now().Unix())
	if out, code := backup(nil, "--metrics-textfile", textfile, "--metrics-interval", "4h"); code != 0 {
		t.Fatalf("backup --metrics-textfile: exit %d\n%s", code, out)
	}
	after := float64(time.Now().Unix() + 1)
	checkMetrics(t, promtool, textfile)
	fams := parseTextfile(t, textfile)
	success := map[string]float64{}
	for _, sp := range []string{"space-a", "space-b"} {
		v, ok := value(fams, "memento_job_last_success_timestamp_seconds", sp)
		if !ok || v < before || v > after {
			t.Errorf("space %s: last success %v (present %v), want within [%v, %v]", sp, v, ok, before, after)
		}
		success[sp] = v
		if v, ok := value(fams, "memento_job_bytes_added_total", sp); !ok || v <= 0 {
			t.Errorf("space %s: bytes added %v", sp, v)
		}
		if _, ok := value(fams, "memento_job_last_failure_timestamp_seconds", sp); ok {
			t.Errorf("space %s: a failure recorded after a successful run", sp)
		}
	}
	if v, ok := value(fams, "memento_job_interval_seconds", ""); !ok || v != 14400 {
		t.Errorf("memento_job_interval_seconds{task=\"backup\"} %v, want 14400", v)
	}
	read1, _ := value(fams, "memento_job_bytes_read_total", "space-a")
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(textfile), "*")); len(matches) != 1 {
		t.Errorf("the textfile directory holds %v, want only the textfile (no temporary left)", matches)
	}

	// A failed run (the repository is gone: exit 3) keeps the successes
	// and adds the failures; the alert rules see both.
	out, code := backup([]string{"MEMENTO_REPOSITORY=" + filepath.Join(e.dir, "no-such-repo")}, "--metrics-textfile", textfile, "--metrics-interval", "4h")
	if code != 3 {
		t.Fatalf("backup into a missing repository: exit %d, want 3\n%s", code, out)
	}
	checkMetrics(t, promtool, textfile)
	fams = parseTextfile(t, textfile)
	for _, sp := range []string{"space-a", "space-b"} {
		if v, _ := value(fams, "memento_job_last_success_timestamp_seconds", sp); v != success[sp] {
			t.Errorf("space %s: last success %v after a failed run, want the earlier %v", sp, v, success[sp])
		}
		if v, ok := value(fams, "memento_job_last_failure_timestamp_seconds", sp); !ok || v < success[sp] {
			t.Errorf("space %s: last failure %v (present %v), want after the success %v", sp, v, ok, success[sp])
		}
	}
	// Another success: the byte counters count on.
	if out, code := backup(nil, "--metrics-textfile", textfile, "--metrics-interval", "4h"); code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	fams = parseTextfile(t, textfile)
	if v, _ := value(fams, "memento_job_bytes_read_total", "space-a"); v <= read1 {
		t.Errorf("bytes read %v after a second backup, want more than %v", v, read1)
	}

	// Bad flags: usage errors naming the flag.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-textfile", filepath.Join(e.dir, "m.txt")}, "memento: --metrics-textfile " + filepath.Join(e.dir, "m.txt") + ": the name must end in .prom"},
		{[]string{"--metrics-push", "pushgateway:9091"}, "memento: --metrics-push pushgateway:9091: not an http(s) URL"},
		{[]string{"--metrics-interval", "-4h"}, "memento: --metrics-interval -4h0m0s: must not be negative"},
	} {
		if out, code := backup(nil, c.args...); code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("backup %v: exit %d, want 2 and %q\n%s", c.args, code, c.want, out)
		}
	}

	// Pushgateway: a real HTTP server receives the push.
	var mu sync.Mutex
	type push struct {
		method, path, ctype string
		body                []byte
	}
	var pushes []push
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/metrics/") {
			// Not a push: another test's probe of a port it had picked
			// (MinIO's health check once reached this server).
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		pushes = append(pushes, push{r.Method, r.URL.Path, r.Header.Get("Content-Type"), b})
		st := status
		mu.Unlock()
		w.WriteHeader(st)
	}))
	defer srv.Close()
	if out, code := backup(nil, "--metrics-push", srv.URL, "--metrics-interval", "4h", "--metrics-instance", "memento-backup"); code != 0 {
		t.Fatalf("backup --metrics-push: exit %d\n%s", code, out)
	}
	host := "memento-backup"
	mu.Lock()
	got := append([]push(nil), pushes...)
	mu.Unlock()
	if len(got) != 1 || got[0].method != http.MethodPost || got[0].path != "/metrics/job/memento/instance/"+host {
		t.Fatalf("pushes %+v, want one POST to /metrics/job/memento/instance/%s", got, host)
	}
	dec := expfmt.NewDecoder(bytes.NewReader(got[0].body), expfmt.ResponseFormat(http.Header{"Content-Type": {got[0].ctype}}))
	fams = map[string]*dto.MetricFamily{}
	for {
		var f dto.MetricFamily
		if err := dec.Decode(&f); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding the push: %v", err)
		}
		fams[f.GetName()] = &f
	}
	for _, sp := range []string{"space-a", "space-b"} {
		if v, ok := value(fams, "memento_job_last_success_timestamp_seconds", sp); !ok || v < before {
			t.Errorf("pushed: space %s last success %v (present %v)", sp, v, ok)
		}
	}
	if v, _ := value(fams, "memento_job_interval_seconds", ""); v != 14400 {
		t.Errorf("pushed interval %v, want 14400", v)
	}
	// The gateway refuses: the backup is saved, the run fails (exit 1)
	// naming the push.
	mu.Lock()
	status = http.StatusInternalServerError
	mu.Unlock()
	out, code = backup(nil, "--metrics-push", srv.URL)
	mu.Lock()
	last := pushes[len(pushes)-1].path
	mu.Unlock()
	if h, _ := os.Hostname(); last != "/metrics/job/memento/instance/"+h {
		t.Errorf("push without --metrics-instance to %s, want the group of this host %s", last, h)
	}
	if code != 1 || !strings.Contains(out, "memento: --metrics-push "+srv.URL+": ") {
		t.Errorf("backup with a refusing Pushgateway: exit %d, want 1 naming --metrics-push\n%s", code, out)
	}
}

func parseTextfile(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return fams
}

// value is the backup task's sample of a family for space ("": the
// interval, which has no space).
func value(fams map[string]*dto.MetricFamily, name, space string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["task"] != "backup" || labels["space"] != space {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// runCode runs a command and returns its combined output and exit code.
func runCode(t *testing.T, dir string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	out, err := runErr(dir, env, name, args...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	}
	t.Fatalf("%s: %v", name, err)
	return "", 0
}

// checkMetrics runs promtool check metrics (which reads stdin) on a file:
// format errors and lint findings fail.
func checkMetrics(t *testing.T, promtool, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics %s: %v\n%s", path, err, out)
	}
}
