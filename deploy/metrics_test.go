package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// agentMetrics are the metrics of the agent contract
// (docs/operations/agent-contract.md): what `memento agent` exports.
var agentMetrics = []string{
	"memento_job_last_success_timestamp_seconds",
	"memento_job_last_failure_timestamp_seconds",
	"memento_job_duration_seconds",
	"memento_job_bytes_read_total",
	"memento_job_bytes_added_total",
	"memento_job_interval_seconds",
	"memento_wal_rpo_lag_seconds",
	"memento_verify_last_result",
	"memento_repository_size_bytes",
	"memento_repository_snapshots",
	"memento_replication_lag_seconds",
	"memento_agent_up",
}

// walWatchMetrics are what `memento wal watch --metrics-addr` exports today
// (repo/agent/walmetrics.go); the contract keeps them working.
var walWatchMetrics = []string{
	"memento_wal_archive_runs_total",
	"memento_wal_archived_bytes_total",
	"memento_wal_stored_bytes_total",
	"memento_wal_archived_sequence",
	"memento_wal_archived_entry_timestamp_seconds",
	"memento_wal_last_success_timestamp_seconds",
	"memento_wal_archive_run_seconds", // a histogram
}

var walWatchHistograms = map[string]bool{"memento_wal_archive_run_seconds": true}

// contractNames returns every series name a query may use: the metrics
// and, for histograms, their _bucket, _sum and _count series.
func contractNames() map[string]bool {
	m := map[string]bool{}
	for _, n := range agentMetrics {
		m[n] = true
	}
	for _, n := range walWatchMetrics {
		m[n] = true
		if walWatchHistograms[n] {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				m[n+s] = true
			}
		}
	}
	return m
}

var metricRE = regexp.MustCompile(`\bmemento_[a-zA-Z0-9_]+`)

// checkMetricNames fails the test for every memento_ name in text that is not
// in the contract.
func checkMetricNames(t *testing.T, where, text string) {
	t.Helper()
	known := contractNames()
	for _, n := range metricRE.FindAllString(text, -1) {
		if !known[n] {
			t.Errorf("%s uses %s, which is not a metric of docs/operations/agent-contract.md", where, n)
		}
	}
}

// TestWalWatchMetricsListed keeps walWatchMetrics equal to what
// repo/agent/walmetrics.go registers (the metrics `wal watch` and the agent
// both export), so a rename there cannot silently break the rules and the
// dashboard.
func TestWalWatchMetricsListed(t *testing.T) {
	src := readFile(t, filepath.Join(rootDir(t), "repo", "agent", "walmetrics.go"))
	got := regexp.MustCompile(`Name:\s*"(memento_[a-z0-9_]+)"`).FindAllStringSubmatch(src, -1)
	var names []string
	for _, m := range got {
		names = append(names, m[1])
	}
	want := append([]string(nil), walWatchMetrics...)
	sort.Strings(names)
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("repo/agent/walmetrics.go registers\n  %v\nthe contract lists\n  %v\nupdate docs/operations/agent-contract.md, deploy/ and this test together", names, want)
	}
}

// TestAgentMetricsRegistered keeps repo/agent/metrics.go and walmetrics.go
// (what `memento agent` exports) equal to the contract: its metrics and
// those of `wal watch`.
func TestAgentMetricsRegistered(t *testing.T) {
	src := readFile(t, filepath.Join(rootDir(t), "repo", "agent", "metrics.go")) +
		readFile(t, filepath.Join(rootDir(t), "repo", "agent", "walmetrics.go"))
	got := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(memento_[a-z0-9_]+)"`).FindAllStringSubmatch(src, -1)
	var names []string
	for _, m := range got {
		names = append(names, m[1])
	}
	want := append(append([]string(nil), agentMetrics...), walWatchMetrics...)
	sort.Strings(names)
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("repo/agent/metrics.go and walmetrics.go register\n  %v\nthe contract lists\n  %v\nupdate docs/operations/agent-contract.md, deploy/ and this test together", names, want)
	}
}

// taskLabelMisuse finds memento's task named by Prometheus's `job` label:
// the agent's label is `task` (`job` is the scrape job, so a `job` label of
// the agent's own would arrive as exported_job and match nothing).
var taskLabelMisuse = []*regexp.Regexp{
	regexp.MustCompile(`\bjob\s*(=|!=|=~|!~)\s*\\?"(backup|wal_archive|verify|forget|prune|wal_compact|replicate)\b`),
	regexp.MustCompile(`\$labels\.job\b`),
	regexp.MustCompile(`\{\{\s*job\s*\}\}`),
	regexp.MustCompile(`\bby\s*\([^)]*\bjob\b`),
}

// TestTaskLabel: the agent labels its job metrics `task`, and the rules,
// their tests, the dashboard and the contract use `task`, never `job`, for it.
func TestTaskLabel(t *testing.T) {
	root := rootDir(t)
	src := readFile(t, filepath.Join(root, "repo", "agent", "metrics.go"))
	if !strings.Contains(src, `[]string{"space", "task"}`) || strings.Contains(src, `"job"`) {
		t.Errorf("repo/agent/metrics.go: the job metrics must carry the labels space and task, and no label job")
	}
	for _, f := range []string{"prometheus/memento-rules.yml", "prometheus/memento-rules.test.yml", "grafana/memento.json",
		filepath.Join(root, "docs", "operations", "agent-contract.md"), filepath.Join(root, "docs", "operations", "backup-restore.md")} {
		text := readFile(t, f)
		for _, re := range taskLabelMisuse {
			if m := re.FindString(text); m != "" {
				t.Errorf("%s: %q names memento's task by the label job; the label is task", f, m)
			}
		}
	}
	doc := readFile(t, filepath.Join(root, "docs", "operations", "agent-contract.md"))
	for _, n := range []string{"memento_job_last_success_timestamp_seconds{space,task}", "memento_job_interval_seconds{task}"} {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("agent-contract.md does not list `%s`", n)
		}
	}
	rules := readFile(t, "prometheus/memento-rules.yml")
	if !strings.Contains(rules, `memento_job_interval_seconds{task="backup"}`) {
		t.Errorf("memento-rules.yml: MementoBackupMissing must scale by the exported backup interval, memento_job_interval_seconds{task=\"backup\"}")
	}
}

// TestAgentContractDoc: the contract document names every metric, every
// environment variable and every HTTP path the deployment files rely on.
func TestAgentContractDoc(t *testing.T) {
	doc := readFile(t, filepath.Join(rootDir(t), "docs", "operations", "agent-contract.md"))
	for _, n := range append(append([]string(nil), agentMetrics...), walWatchMetrics...) {
		if !strings.Contains(doc, "`"+n+"`") && !strings.Contains(doc, "`"+n+"{") {
			t.Errorf("agent-contract.md does not list the metric %s", n)
		}
	}
	for _, s := range []string{"MEMENTO_REPOSITORY", "MEMENTO_PASSWORD_FILE", "BACKUP_RETENTION_DAILY",
		"BACKUP_RETENTION_WEEKLY", "BACKUP_RETENTION_MONTHLY", "WAL_COMPACT_THRESHOLD",
		"MEMENTO_REPLICATE_LIMIT", "/metrics", "/healthz", "/readyz", "--listen", "--config", "--data-dir", "9567"} {
		if !strings.Contains(doc, s) {
			t.Errorf("agent-contract.md does not mention %s", s)
		}
	}
	checkMetricNames(t, "agent-contract.md", doc)
}

type grafanaPanel struct {
	ID      int            `json:"id"`
	Type    string         `json:"type"`
	Title   string         `json:"title"`
	Panels  []grafanaPanel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	GridPos *struct{ X, Y, W, H int } `json:"gridPos"`
}

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaVars replaces Grafana's variables by values PromQL accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$space", ".*")

func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana/memento.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(raw) {
		t.Fatal("grafana/memento.json is not valid JSON")
	}
	var d grafanaDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana/memento.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 || len(d.Panels) == 0 {
		t.Fatalf("grafana/memento.json: uid %q, title %q, schemaVersion %d, %d panels: all must be set", d.UID, d.Title, d.SchemaVersion, len(d.Panels))
	}
	var exprs []string
	ids := map[int]bool{}
	used := map[string]bool{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if ids[p.ID] {
				t.Errorf("%s: duplicate panel id", where)
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("%s: no gridPos", where)
			}
			walk(p.Panels)
			if p.Type == "row" || p.Type == "text" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, tg := range p.Targets {
				if !metricRE.MatchString(tg.Expr) {
					t.Errorf("%s, query %s: %q uses no memento metric", where, tg.RefID, tg.Expr)
				}
				checkMetricNames(t, where, tg.Expr)
				for _, n := range metricRE.FindAllString(tg.Expr, -1) {
					used[n] = true
				}
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		checkMetricNames(t, "template variable "+v.Name, v.Definition)
	}
	for _, n := range agentMetrics {
		if !used[n] {
			t.Errorf("no panel shows %s", n)
		}
	}

	// Let Prometheus's own parser judge every query: each becomes a
	// recording rule that promtool check rules parses.
	promtool := needTool(t, "promtool", "prometheus")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(grafanaVars.Replace(e))
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, ".", nil, promtool, "check", "rules", f)
	if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", len(exprs))) {
		t.Fatalf("promtool check rules on the dashboard's queries:\n%s", out)
	}
}
