package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"memento/cmd/memento/instant"
	"memento/walreplay"
)

// timesFixture is one Engram space backed up mid-way and archived to its
// end; engram-sim stamps entries with the wall clock, the second half at
// rate entries a second ("0": as fast as it can).
func timesFixture(t *testing.T, rate string) (e *env, dd string) {
	e = newEnv(t)
	dd = filepath.Join(t.TempDir(), "dd")
	e.sim("run", "--dir", dd, "--spaces", "1", "--rate", "0", "--entries", "1500", "--segment-size", "32KiB",
		"--dim", "8", "--same-ts", "0.3", "--seed", "31")
	e.mustRun("backup", "--data-dir", dd, "--all")
	e.sim("run", "--dir", dd, "--rate", rate, "--entries", "1500", "--seed", "31")
	e.mustRun("wal", "archive", "--data-dir", dd, "--all")
	return e, dd
}

var replayedRe = regexp.MustCompile(`space space-a: replayed \d+ entr(?:y|ies) to seq (\d+) `)

// replayAt replays dd's WAL of space-a to the given --at (wal replay: the
// same parser as restore, without the repository) and returns the seq it
// stopped at and the run's stderr.
func (e *env) replayAt(dd, at string, more ...string) (uint64, string) {
	e.t.Helper()
	r := e.run(append([]string{"wal", "replay", "--data-dir", dd, "--space", "space-a", "--at", at}, more...)...)
	m := replayedRe.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		e.t.Fatalf("wal replay --at %q %v: exit %d\n%s%s", at, more, r.code, r.stdout, r.stderr)
	}
	seq, _ := strconv.ParseUint(m[1], 10, 64)
	return seq, r.stderr
}

// restoreAt restores space-a at the given --at (and more flags) into a new
// dir and returns the recovered seq and the run's stderr.
func (e *env) restoreAt(at string, more ...string) (uint64, string) {
	e.t.Helper()
	dst := filepath.Join(e.t.TempDir(), "r")
	r := e.run(append([]string{"restore", "--space", "space-a", "--at", at, "--target", dst}, more...)...)
	if r.code != 0 {
		e.t.Fatalf("restore --at %q %v: exit %d\n%s%s", at, more, r.code, r.stdout, r.stderr)
	}
	m := recoveredRe.FindStringSubmatch(r.stdout)
	if m == nil {
		e.t.Fatalf("restore --at %q: no recovered line in %q", at, r.stdout)
	}
	seq, _ := strconv.ParseUint(m[2], 10, 64)
	return seq, r.stderr
}

// TestE2ETimeInputs: every form of an instant that --at accepts, through
// the binary, recovers to the entry engram-sim's ground truth names; bad
// ones are one-line usage errors (exit 2) listing the accepted forms, never
// Go's layout string.
func TestE2ETimesAndOutput(t *testing.T) {
	start := time.Now()
	e, dd := timesFixture(t, "250") // 6 s of history: room for "N ago" to land in it
	for _, part := range []struct {
		name string
		fn   func(*testing.T, *env, string)
	}{{"printed with zone, round trip", timesPrintedWithZoneRoundTrip}, {"inputs", timeInputs},
		{"audit figures exact", auditFiguresExact}, {"quiet keeps answers", quietKeepsAnswers}} {
		t.Logf("%s: from %v", part.name, time.Since(start).Round(time.Millisecond))
		part.fn(t, e, dd)
	}
}

func timeInputs(t *testing.T, e *env, dd string) {
	rg := e.ranges("space-a")
	if len(rg.Ranges) != 1 {
		t.Fatalf("ranges %+v", rg)
	}
	lo, hi := rg.Ranges[0].FromSeq, rg.Ranges[0].ToSeq
	midTS := e.simTruth(dd, "space-a", "--to-seq", strconv.FormatUint((lo+hi)/2, 10)).TimestampNS
	mid := e.simTruth(dd, "space-a", "--at", strconv.FormatInt(midTS, 10)) // every entry stamped midTS
	midSec := e.simTruth(dd, "space-a", "--at", strconv.FormatInt(time.Unix(0, midTS).Truncate(time.Second).UnixNano(), 10))
	end := e.simTruth(dd, "space-a")
	at := time.Unix(0, midTS)
	kathmandu := time.FixedZone("", 5*3600+45*60)
	for _, c := range []struct {
		at   string
		more []string
		want uint64
		echo bool // a relative or zone-less input is echoed as the instant it means
	}{
		{walreplay.FormatTime(midTS), nil, mid.Sequence, false},
		{at.In(kathmandu).Format(time.RFC3339Nano), nil, mid.Sequence, false},
		{at.In(time.FixedZone("", -5*3600)).Format("2006-01-02 15:04:05.999999999Z07:00"), nil, mid.Sequence, false},
		{strconv.FormatInt(midTS, 10), nil, mid.Sequence, false},
		{"@" + strconv.FormatInt(midTS/1e9, 10) + "." + strconv.FormatInt(1e9+midTS%1e9, 10)[1:], nil, mid.Sequence, false},
		{at.In(kathmandu).Format("2006-01-02T15:04:05.999999999"), []string{"--tz", "Asia/Kathmandu"}, mid.Sequence, true},
		{at.UTC().Format("2006-01-02 15:04:05"), []string{"--tz", "UTC"}, midSec.Sequence, false},
	} {
		at := e.replayAt
		if strings.Contains(c.at, "+05:45") || len(c.more) == 2 && c.more[1] == "Asia/Kathmandu" {
			at = func(_, in string, more ...string) (uint64, string) { return e.restoreAt(in, more...) } // and through restore
		}
		seq, stderr := at(dd, c.at, c.more...)
		if seq != c.want {
			t.Errorf("restore --at %q %v: seq %d, want %d", c.at, c.more, seq, c.want)
		}
		if echoed := strings.Contains(stderr, "memento: info: --at "+strconv.Quote(c.at)+" is 20"); echoed != c.echo {
			t.Errorf("restore --at %q: stderr %q: echoed %v, want %v", c.at, stderr, echoed, c.echo)
		}
	}

	// Relative: now moves, so the instant each means is read from the
	// echo and checked against the ground truth at it.
	echoRe := regexp.MustCompile(`memento: info: --at "[^"]+" is (\S+)`)
	// Aimed just after the range's start: the time the process takes to
	// start (seconds, on a loaded machine) moves the instant later, within
	// the 6 s of history.
	aim := time.Unix(0, rg.Ranges[0].FromTS).Add(100 * time.Millisecond)
	for _, form := range []string{"%dms ago", "-%dms", "%dms  AGO"} {
		ago := time.Since(aim).Milliseconds()
		in := fmt.Sprintf(form, ago)
		seq, stderr := e.replayAt(dd, in)
		m := echoRe.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("restore --at %q: no echo in %q", in, stderr)
		}
		meant, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || meant.Before(aim.Add(-time.Millisecond)) || meant.After(aim.Add(time.Minute)) {
			t.Fatalf("restore --at %q meant %s (%v), want shortly after %s", in, m[1], err, aim)
		}
		if want := e.simTruth(dd, "space-a", "--at", strconv.FormatInt(meant.UnixNano(), 10)).Sequence; seq != want {
			t.Errorf("restore --at %q (%s): seq %d, want %d", in, m[1], seq, want)
		}
	}
	r := e.wantFail(exitUnrecoverable, "it is after the last archived entry", "restore", "--space", "space-a", "--at", "now", "--target", filepath.Join(t.TempDir(), "n"))
	if !strings.Contains(r.stderr, `memento: info: --at "now" is 20`) {
		t.Errorf("restore --at now: %q", r.stderr)
	}
	_ = end
	// log --since: relative forms, bare durations and day names.
	for since, want := range map[string]int{"24h": 2, "-7d": 2, "yesterday": 2, "-1ms": 0, "tomorrow": -1} {
		r := e.run("log", "--since", since, "--tz", "UTC")
		if want < 0 {
			if r.code != exitUsage {
				t.Errorf("log --since %s: exit %d", since, r.code)
			}
			continue
		}
		if n := strings.Count(r.stdout, "\n") - 2; r.code != 0 || n < want || (want == 0 && n != 0) {
			t.Errorf("log --since %s: exit %d, %d records, want %d:\n%s%s", since, r.code, n, want, r.stdout, r.stderr)
		}
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--at", "yesterday at noon"}, `--at: "yesterday at noon" is not a time: give RFC 3339`},
		{[]string{"--at", "teatime"}, "Unix nanoseconds, @Unix seconds, a local date or time in --tz"},
		{[]string{"--at", "2026-11-01T00:00:00.1234567891Z"}, "want 1 to 9 fractional digits of a second (nanoseconds), got 10"},
		{[]string{"--at", "-15x"}, `--at: "-15x": duration "15x": unknown unit`},
		{[]string{"--at", "2300-01-01T00:00:00Z"}, "outside the Unix-nanosecond range"},
		{[]string{"--at", "2026-11-01", "--tz", "Mars/Olympus"}, `--tz "Mars/Olympus": not a time zone`},
	} {
		// wal replay reads --at as restore does, without opening the repository.
		args := append([]string{"wal", "replay", "--data-dir", dd, "--space", "space-a"}, c.args...)
		r := e.wantFail(exitUsage, c.msg, args...)
		if strings.Contains(r.stderr, "2006") {
			t.Errorf("%v: the error shows Go's layout: %s", c.args, r.stderr)
		}
	}
	r = e.wantFail(exitUsage, `--at: "2h from now" is not a time`, "restore", "--space", "space-a", "--at", "2h from now", "--target", filepath.Join(t.TempDir(), "x"))
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("not one line: %q", r.stderr)
	}
	e.wantFail(exitUsage, `--since: "the dawn of time" is not a time`, "log", "--since", "the dawn of time")
}

var rfc3339Zone = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`)

// timesPrintedWithZoneRoundTrip: snapshots, log and ls print times with
// their zone (--tz), and what snapshots prints is accepted back by restore
// --at and log --since.
func timesPrintedWithZoneRoundTrip(t *testing.T, e *env, dd string) {
	out := e.mustRun("snapshots", "--tz", "Asia/Kathmandu")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("snapshots:\n%s", out)
	}
	when := strings.Fields(lines[1])[1]
	if !rfc3339Zone.MatchString(when) || !strings.HasSuffix(when, "+05:45") {
		t.Fatalf("snapshots TIME %q: want RFC 3339 with the zone's offset +05:45", when)
	}
	var sns []struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &sns); err != nil || len(sns) != 1 {
		t.Fatalf("snapshots --json: %v", err)
	}
	if got, err := instant.Parse(when, instant.Options{}); err != nil || !got.Equal(sns[0].Time.Truncate(time.Second)) {
		t.Fatalf("printed %q reads back as %v (%v), want %v", when, got, err, sns[0].Time.Truncate(time.Second))
	}
	// Fed back: --at the printed time names the entry the ground truth
	// names at that second (wal replay: restore would refuse an instant
	// before the snapshot's checkpoint, which the second may be).
	whenT, _ := time.Parse(time.RFC3339, when)
	if seq, _ := e.replayAt(dd, when); seq != e.simTruth(dd, "space-a", "--at", strconv.FormatInt(whenT.UnixNano(), 10)).Sequence {
		t.Errorf("wal replay --at %s (printed by snapshots): seq %d", when, seq)
	}
	logOut := e.mustRun("log", "--since", when, "--command", "backup", "--tz", "America/New_York")
	ll := strings.Split(strings.TrimSpace(logOut), "\n")
	if len(ll) != 3 || !strings.Contains(logOut, "\n1 record\n") {
		t.Fatalf("log --since %s (printed by snapshots):\n%s", when, logOut)
	}
	if w := strings.Fields(ll[1])[0]; !rfc3339Zone.MatchString(w) || !(strings.HasSuffix(w, "-05:00") || strings.HasSuffix(w, "-04:00")) {
		t.Errorf("log TIME %q: want New York's offset", w)
	}
	lsOut := e.mustRun("ls", "--tz", "UTC", sns0ID(e))
	if f := strings.Fields(strings.SplitN(lsOut, "\n", 2)[0]); len(f) < 4 || !rfc3339Zone.MatchString(f[2]) || !strings.HasSuffix(f[2], "Z") {
		t.Errorf("ls line %q: want an RFC 3339 UTC time", f)
	}
}

func sns0ID(e *env) string { return e.snapshotIDs()[0] }

// auditFiguresExact: a point-in-time restore's timestamp_ns is in the
// audit trail to the nanosecond (it was a float64), log prints integer
// figures exactly and bytes in IEC units.
func auditFiguresExact(t *testing.T, e *env, dd string) {
	end := e.simTruth(dd, "space-a")
	e.restoreAt(strconv.FormatInt(end.TimestampNS, 10))
	dec := json.NewDecoder(strings.NewReader(e.mustRun("log", "--json", "--command", "restore")))
	dec.UseNumber()
	var recs []struct {
		Figures map[string]json.Number `json:"figures"`
	}
	if err := dec.Decode(&recs); err != nil || len(recs) == 0 {
		t.Fatalf("log --json: %d records, %v", len(recs), err)
	}
	if got := recs[len(recs)-1].Figures["timestamp_ns"].String(); got != strconv.FormatInt(end.TimestampNS, 10) {
		t.Errorf("audit timestamp_ns %s, want %d", got, end.TimestampNS)
	}
	human := e.mustRun("log", "--command", "restore")
	if !strings.Contains(human, "timestamp_ns="+strconv.FormatInt(end.TimestampNS, 10)) || !strings.Contains(human, " seq="+strconv.FormatUint(end.Sequence, 10)) {
		t.Errorf("log does not print the exact figures:\n%s", human)
	}
	backup := e.mustRun("log", "--command", "backup")
	if !regexp.MustCompile(` bytes=[0-9.]+(B|KiB|MiB) `).MatchString(backup) || strings.Contains(backup, "e+") || strings.Contains(backup, " MB") {
		t.Errorf("log: bytes not in IEC units:\n%s", backup)
	}
}

// quietKeepsAnswers: -q drops chatter (backup's summary), not the answer
// a listing command was asked for.
func quietKeepsAnswers(t *testing.T, e *env, dd string) {
	if out := e.mustRun("-q", "backup", "--data-dir", dd, "--all"); out != "" {
		t.Errorf("backup -q printed %q", out)
	}
	id := sns0ID(e)
	for _, args := range [][]string{{"snapshots"}, {"ls", id}, {"pitr", "ranges", "--space", "space-a"}, {"log", "--command", "backup"}, {"identity", "show", "--data-dir", dd}} {
		loud, quiet := e.mustRun(args...), e.mustRun(append([]string{"-q"}, args...)...)
		if quiet == "" || quiet != loud {
			t.Errorf("%v -q printed %q, without -q %q", args, quiet, loud)
		}
	}
}

// TestE2ELsModes: ls prints modes as ls -l does.
func TestE2ELsModes(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "src")
	for _, d := range []struct {
		p    string
		mode os.FileMode
	}{{"dir", 0o755}, {"tmp", 0o777 | os.ModeSticky}, {"ro", 0o500}} {
		if err := os.MkdirAll(filepath.Join(src, d.p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, d.p), d.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct {
		p    string
		mode os.FileMode
	}{{"file", 0o644}, {"suid", 0o755 | os.ModeSetuid}, {"sgid", 0o640 | os.ModeSetgid}, {"exec", 0o700}} {
		if err := os.WriteFile(filepath.Join(src, f.p), []byte(f.p), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(src, f.p), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("file", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	out := e.mustRun("ls", sns0ID(e))
	for name, want := range map[string]string{"dir": "drwxr-xr-x", "tmp": "drwxrwxrwt", "ro": "dr-x------", "file": "-rw-r--r--",
		"suid": "-rwsr-xr-x", "sgid": "-rw-r-S---", "exec": "-rwx------", "link": "lrwxrwxrwx"} {
		re := regexp.MustCompile(`(?m)^(\S+) .*/` + name + `( -> file)?$`)
		m := re.FindStringSubmatch(out)
		if m == nil || m[1] != want {
			t.Errorf("ls %s: %q, want %s\n%s", name, m, want, out)
		}
	}
}

// TestE2EWALWatchLogsAndAudits: wal watch logs each run that archived
// something at info level, and records its runs in the audit trail: once at
// the first archiving run, once more at stop for the runs since.
func TestE2EWALWatchLogsAndAudits(t *testing.T) {
	e, dd := timesFixture(t, "0")
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "300", "--seed", "31") // unarchived entries
	watch, out := e.start(mementoBin, "wal", "watch", "--data-dir", dd, "--all", "--interval", "100ms")
	waitFor := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(120 * time.Second)
		for strings.Count(out.String(), what) < n {
			if time.Now().After(deadline) {
				_ = watch.Process.Kill()
				t.Fatalf("wal watch did not log %q %d times:\n%s", what, n, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	archivedAll := func() {
		t.Helper()
		deadline := time.Now().Add(120 * time.Second)
		for e.ranges("space-a").ArchivedSeq != walEnd(t, dd, "space-a") {
			if time.Now().After(deadline) {
				_ = watch.Process.Kill()
				t.Fatalf("wal watch did not archive to the WAL's end:\n%s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("memento: info: archived space=space-a segments=", 1)
	if !regexp.MustCompile(`memento: info: archived space=space-a segments=\d+ bytes=[0-9.]+(B|KiB|MiB) last_seq=\d+ seconds=`).MatchString(out.String()) {
		t.Errorf("archived line not as documented:\n%s", out)
	}
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "300", "--seed", "31")
	waitFor("memento: info: archived space=space-a segments=", 2)
	archivedAll()
	_ = watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Fatalf("wal watch: %v\n%s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, "memento: ") {
			t.Errorf("wal watch line not in the log format: %q", l)
		}
	}
	dec := json.NewDecoder(strings.NewReader(e.mustRun("log", "--json", "--command", "archive")))
	dec.UseNumber()
	var recs []struct {
		Space   string                 `json:"space"`
		Result  string                 `json:"result"`
		Figures map[string]json.Number `json:"figures"`
	}
	if err := dec.Decode(&recs); err != nil {
		t.Fatal(err)
	}
	// The fixture's `wal archive` record, then the watch's two.
	if len(recs) != 3 {
		t.Fatalf("%d archive records, want 3 (wal archive, watch's first run, watch's stop): %+v", len(recs), recs)
	}
	var runs int64
	for _, r := range recs[1:] {
		n, _ := r.Figures["runs"].Int64()
		runs += n
		if r.Space != "space-a" || r.Result != "ok" || n < 1 {
			t.Errorf("watch record %+v", r)
		}
	}
	if last := recs[2].Figures["last_seq"].String(); last != strconv.FormatUint(walEnd(t, dd, "space-a"), 10) {
		t.Errorf("the stop record's last_seq %s, want the WAL's end %d", last, walEnd(t, dd, "space-a"))
	}
	if runs < 2 {
		t.Errorf("the records sum %d runs, want at least the 2 that archived", runs)
	}
	// -q: no info lines.
	watch, out = e.start(mementoBin, "-q", "wal", "watch", "--data-dir", dd, "--all", "--interval", "100ms")
	e.sim("run", "--dir", dd, "--rate", "0", "--entries", "300", "--seed", "31")
	archivedAll()
	_ = watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil || out.String() != "" {
		t.Fatalf("wal watch -q: %v, printed %q", err, out.String())
	}
}

// TestE2ELogFormat: warnings share the one log format, text or JSON by
// --log-format or MEMENTO_LOG_FORMAT.
func TestE2ELogFormat(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("backup", src)
	var logs []string
	_ = filepath.WalkDir(filepath.Join(e.repo, "logs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			logs = append(logs, p)
		}
		return nil
	})
	if len(logs) != 1 {
		t.Fatalf("audit files %v", logs)
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(logs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run("log")
	if r.code != 0 || !regexp.MustCompile(`(?m)^memento: warning: audit record does not verify err=".+"$`).MatchString(r.stderr) ||
		strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("text warning: exit %d, %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"--log-format", "json", "log"}, {"log"}} {
		e.extra = nil
		if len(args) == 1 {
			e.extra = []string{"MEMENTO_LOG_FORMAT=json"}
		}
		r := e.run(args...)
		var line struct {
			Time  time.Time `json:"time"`
			Level string    `json:"level"`
			Msg   string    `json:"msg"`
			Err   string    `json:"err"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stderr), &line) != nil || line.Level != "WARN" || line.Msg != "audit record does not verify" ||
			line.Err == "" || line.Time.IsZero() || bytes.Count([]byte(r.stderr), []byte("\n")) != 1 {
			t.Errorf("%v: json warning: exit %d, %q", args, r.code, r.stderr)
		}
	}
	e.extra = nil
	e.wantFail(exitUsage, `--log-format "xml": give text or json`, "--log-format", "xml", "snapshots")
}
