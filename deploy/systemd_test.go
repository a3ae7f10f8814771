package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnits runs systemd-analyze verify on every unit in
// deploy/systemd and fails on any message about them, since verify exits 0
// on unknown keys and unparsable values. verify requires ExecStart's binary
// to exist: the units are copied into a temporary directory with
// /usr/local/bin/memento replaced by a memento built from this tree (and the
// EnvironmentFile by the shipped memento.env), nothing else changed.
func TestSystemdUnits(t *testing.T) {
	sa := needTool(t, "systemd-analyze", "systemd")
	bin := buildBinaries(t)
	dir := t.TempDir()
	units, err := filepath.Glob("systemd/memento-*")
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in deploy/systemd (%v)", err)
	}
	env := filepath.Join(dir, "memento.env")
	if err := os.WriteFile(env, []byte(readFile(t, "systemd/memento.env")), 0o600); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range units {
		if !strings.HasSuffix(u, ".service") && !strings.HasSuffix(u, ".timer") {
			continue
		}
		s := readFile(t, u)
		if strings.HasSuffix(u, ".service") && !strings.Contains(s, "ExecStart=/usr/local/bin/memento ") {
			t.Errorf("%s: ExecStart is not /usr/local/bin/memento", u)
		}
		if strings.Contains(s, "EnvironmentFile=") && !strings.Contains(s, "EnvironmentFile=/etc/memento/memento.env\n") {
			t.Errorf("%s: EnvironmentFile is not /etc/memento/memento.env", u)
		}
		s = strings.ReplaceAll(s, "/usr/local/bin/memento ", filepath.Join(bin, "memento")+" ")
		s = strings.ReplaceAll(s, "EnvironmentFile=/etc/memento/memento.env", "EnvironmentFile="+env)
		name := filepath.Base(u)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	for _, want := range []string{"memento-agent.service", "memento-wal-watch.service", "memento-backup.service", "memento-backup.timer", "memento-verify.service", "memento-verify.timer"} {
		if !contains(names, want) {
			t.Errorf("deploy/systemd lacks %s", want)
		}
	}
	out, err := runErr(dir, nil, sa, append([]string{"verify", "--man=no"}, names...)...)
	if err != nil {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", strings.Join(names, " "), err, out)
	}
	// Messages about other units of the machine (a dependency's own file)
	// are logged; any about ours fails.
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		ours := strings.Contains(line, dir)
		for _, n := range names {
			ours = ours || strings.Contains(line, n)
		}
		if ours {
			t.Errorf("systemd-analyze verify: %s", line)
		} else {
			t.Logf("systemd-analyze verify (not about our units): %s", line)
		}
	}

	// The timer's backups export their job metrics to node_exporter's
	// textfile collector, with the timer's interval.
	if b := readFile(t, "systemd/memento-backup.service"); !strings.Contains(b, " --metrics-textfile ${MEMENTO_METRICS_TEXTFILE} --metrics-interval 4h\n") {
		t.Error("memento-backup.service does not export its metrics (--metrics-textfile ${MEMENTO_METRICS_TEXTFILE} --metrics-interval 4h)")
	}
	if !strings.Contains(readFile(t, "systemd/memento-backup.timer"), "\nOnCalendar=*-*-* 00/4:00:00\n") {
		t.Error("memento-backup.timer no longer runs every 4 hours: change --metrics-interval in memento-backup.service with it")
	}
	if !strings.Contains(readFile(t, "systemd/memento.env"), "\nMEMENTO_METRICS_TEXTFILE=/var/lib/prometheus/node-exporter/memento_backup.prom\n") {
		t.Error("memento.env does not set MEMENTO_METRICS_TEXTFILE")
	}

	// Every service's hardening, as systemd scores it (0 best, 10 worst):
	// the threshold is ten times the exposure level; fail above 2.0.
	for _, name := range []string{"memento-agent.service", "memento-backup.service", "memento-verify.service", "memento-wal-watch.service"} {
		unit := readFile(t, "systemd/"+name)
		for _, k := range []string{"ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes",
			"ReadWritePaths=", "CapabilityBoundingSet=\n", "RestrictAddressFamilies=", "SystemCallFilter=@system-service",
			"User=memento", "SupplementaryGroups=engram"} {
			if !strings.Contains(unit, "\n"+k) {
				t.Errorf("%s lacks %s", name, strings.TrimSpace(k))
			}
		}
		out, err = runErr(dir, nil, sa, "security", "--offline=yes", "--threshold=20", name)
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v)\n%s", name, err, out)
			continue
		}
		i := strings.LastIndex(out, "Overall exposure level")
		if i < 0 {
			t.Errorf("systemd-analyze security %s: no overall exposure level in\n%s", name, out)
			continue
		}
		t.Logf("%s: %s", name, strings.TrimSpace(out[i:]))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
