package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"memento/repo"
	"memento/repo/repotest"
)

// docExitCodes parses the exit code table of docs/cli.md: code -> name.
func docExitCodes(t *testing.T) map[int]string {
	t.Helper()
	doc, err := os.ReadFile(cliDocPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i := strings.Index(s, "\n## Exit codes\n")
	if i < 0 {
		t.Fatalf("%s has no '## Exit codes' section", cliDocPath)
	}
	s = s[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	row := regexp.MustCompile(`(?m)^\| (\d+) \| ([^|]+) \|`)
	out := map[int]string{}
	for _, m := range row.FindAllStringSubmatch(s, -1) {
		code, _ := strconv.Atoi(m[1])
		if _, dup := out[code]; dup {
			t.Fatalf("%s lists exit code %d twice", cliDocPath, code)
		}
		out[code] = strings.TrimSpace(m[2])
	}
	return out
}

// exitConstants are the codes of exitcode.go, by the name docs/cli.md gives.
var exitConstants = map[string]int{
	"OK": exitOK, "failure": exitFailure, "usage": exitUsage, "no repository": exitNoRepository,
	"wrong password": exitWrongPassword, "corrupt": exitCorrupt, "locked": exitLocked,
	"not found": exitNotFound, "unrecoverable": exitUnrecoverable, "interrupted": exitInterrupted,
}

// exitTrigger makes memento exit with one code of the table, through the
// real binary and a real repository; msg is in the error line.
type exitTrigger struct {
	msg string
	run func(t *testing.T, json bool) result
}

func withJSON(json bool, args ...string) []string {
	if json {
		return append(args, "--json")
	}
	return args
}

// exitTriggers has one way to get each documented code.
func exitTriggers(t *testing.T) map[int]exitTrigger {
	e := newEnv(t)
	dd := filepath.Join(t.TempDir(), "engram")
	e.sim("generate", "--dir", dd, "--size", "1MB", "--spaces", "1", "--segment-size", "64KiB", "--dim", "16", "--seed", "3")
	e.mustRun("backup", "--data-dir", dd, "--all")
	// A repository of a newer format version, and one whose key file is
	// damaged.
	newer, damaged := newEnv(t), newEnv(t)
	cfg := filepath.Join(newer.repo, "config")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v99 := strings.Replace(string(b), fmt.Sprintf(`"version": %d,`, repo.FormatVersion), `"version": 99,`, 1)
	if v99 == string(b) {
		t.Fatalf("config has no version %d:\n%s", repo.FormatVersion, b)
	}
	if err := os.WriteFile(cfg, []byte(v99), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := filepath.Glob(filepath.Join(damaged.repo, "keys", "*"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("key files %v, %v", keys, err)
	}
	repotest.FlipByte(t, keys[0], 40)
	return map[int]exitTrigger{
		exitOK:      {"", func(t *testing.T, json bool) result { return e.run(withJSON(json, "snapshots")...) }},
		exitFailure: {"unsupported format", func(t *testing.T, json bool) result { return newer.run(withJSON(json, "snapshots")...) }},
		exitUsage:   {`unknown command "frob"`, func(t *testing.T, json bool) result { return e.run(withJSON(json, "frob")...) }},
		exitNoRepository: {"no repository", func(t *testing.T, json bool) result {
			return e.run(withJSON(json, "--repo", filepath.Join(t.TempDir(), "none"), "snapshots")...)
		}},
		exitWrongPassword: {"wrong password", func(t *testing.T, json bool) result {
			w := *e
			w.password = "not the password"
			return w.run(withJSON(json, "snapshots")...)
		}},
		exitCorrupt: {"content does not match its name", func(t *testing.T, json bool) result { return damaged.run(withJSON(json, "snapshots")...) }},
		exitLocked: {"shared lock of 'wal watch'", func(t *testing.T, json bool) result {
			watch := exec.Command(mementoBin, "wal", "watch", "--data-dir", dd, "--all", "--interval", "200ms")
			watch.Env = e.environ()
			var out strings.Builder
			watch.Stdout, watch.Stderr = &out, &out
			if err := watch.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = watch.Process.Signal(syscall.SIGTERM); _ = watch.Wait() }()
			e.waitForLock(out.String)
			return e.run(withJSON(json, "prune")...)
		}},
		exitNotFound: {"snapshot 12345678: not found", func(t *testing.T, json bool) result {
			return e.run(withJSON(json, "ls", "12345678")...)
		}},
		exitUnrecoverable: {"cannot be recovered", func(t *testing.T, json bool) result {
			return e.run(withJSON(json, "restore", "--space", "space-a", "--at", "2000-01-01T00:00:00Z", "--target", filepath.Join(t.TempDir(), "t"))...)
		}},
		exitInterrupted: {"interrupted", func(t *testing.T, json bool) result { return e.interruptedRun(json) }},
	}
}

// checkFailure requires exit code want and one error: with --json one JSON
// object on stderr carrying the code and msg, and nothing on stdout; else
// one "memento: " line containing msg.
func checkFailure(t *testing.T, what string, r result, want int, msg string, js bool) {
	t.Helper()
	if r.code != want {
		t.Errorf("%s: exit %d, want %d\nstderr: %s", what, r.code, want, r.stderr)
		return
	}
	if want == exitOK {
		return
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "memento: ") || strings.HasPrefix(l, "{") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Errorf("%s: want exactly one error line, got:\n%s", what, r.stderr)
		return
	}
	if !js {
		if !strings.HasPrefix(lines[0], "memento: ") || !strings.Contains(lines[0], msg) {
			t.Errorf("%s: error %q does not contain %q", what, lines[0], msg)
		}
		return
	}
	if strings.TrimSpace(r.stdout) != "" {
		t.Errorf("%s --json: failed but printed on stdout: %q", what, r.stdout)
	}
	var je struct {
		MessageType string `json:"message_type"`
		Code        int    `json:"code"`
		Message     string `json:"message"`
	}
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&je); err != nil {
		t.Errorf("%s --json: the error is not one JSON object: %q: %v", what, lines[0], err)
		return
	}
	if je.MessageType != "exit_error" || je.Code != want || !strings.Contains(je.Message, msg) || strings.HasPrefix(je.Message, "memento: ") {
		t.Errorf("%s --json: error %+v, want exit_error, code %d, a message containing %q", what, je, want, msg)
	}
}

// TestExitCodeTable walks the exit code table of docs/cli.md row by row:
// every documented code is one of exitcode.go with that name, and the real
// binary exits with it (and prints one error line, or one JSON object with
// --json) in a situation the row describes.
func TestExitCodeTable(t *testing.T) {
	doc := docExitCodes(t)
	if len(doc) != len(exitConstants) {
		t.Errorf("docs/cli.md lists %d exit codes, exitcode.go has %d", len(doc), len(exitConstants))
	}
	triggers := exitTriggers(t)
	for code, name := range doc {
		c, ok := exitConstants[name]
		if !ok || c != code {
			t.Errorf("docs/cli.md: exit code %d %q is not exitcode.go's (%v, %d)", code, name, ok, c)
			continue
		}
		tr, ok := triggers[code]
		if !ok {
			t.Errorf("exit code %d (%s): no end-to-end trigger", code, name)
			continue
		}
		for _, js := range []bool{false, true} {
			checkFailure(t, "exit code "+strconv.Itoa(code)+" ("+name+")", tr.run(t, js), code, tr.msg, js)
		}
	}
}

// TestExitCodeCases are the cases issue 17 listed as exiting with the wrong
// code.
func TestExitCodeCases(t *testing.T) {
	e := newEnv(t)
	d := t.TempDir()
	for _, p := range []string{"a/x", "b/x"} {
		if err := os.MkdirAll(filepath.Join(d, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pwFile := filepath.Join(d, "password")
	if err := os.WriteFile(pwFile, []byte(e.password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noPassword := *e
	noPassword.password = ""
	fresh := filepath.Join(d, "fresh")
	cases := []struct {
		e    *env
		code int
		msg  string
		args []string
	}{
		{e, exitUsage, `unknown command "frob" for "memento"`, []string{"frob"}},
		{e, exitUsage, `unknown command "frob" for "memento wal"`, []string{"wal", "frob"}},
		{e, exitUsage, "ls accepts between 1 and 2 arg(s), received 0", []string{"ls"}},
		{e, exitUsage, "ls accepts between 1 and 2 arg(s), received 3", []string{"ls", "a", "b", "c"}},
		{e, exitUsage, "invalid snapshot reference", []string{"ls", "zzzz"}},
		{e, exitUsage, "mount accepts 1 arg(s), received 0", []string{"mount"}},
		{e, exitOK, "", []string{"backup", filepath.Join(d, "a/x"), filepath.Join(d, "b/x")}}, // full paths: two sources of one name go in one snapshot
		{&noPassword, exitUsage, "password file: open /nonexistent", []string{"snapshots", "--password-file", "/nonexistent"}},
		{&noPassword, exitUsage, "no password", []string{"--repo", fresh, "init"}},
		{&noPassword, exitOK, "", []string{"snapshots", "--password-file", pwFile}}, // an empty MEMENTO_PASSWORD does not hide the file
		{e, exitNotFound, "space nosuchspace: not found", []string{"pitr", "ranges", "--space", "nosuchspace"}},
		{e, exitNotFound, "space nosuchspace: not found", []string{"restore", "--space", "nosuchspace", "--at", "2000-01-01T00:00:00Z", "--target", filepath.Join(d, "t")}},
		{e, exitNotFound, "backup source /nonexistent: not found", []string{"backup", "/nonexistent"}},
		{e, exitNotFound, "data dir /nonexistent: not found", []string{"backup", "--data-dir", "/nonexistent", "--all"}},
	}
	for _, c := range cases { // --json errors: TestExitCodeTable
		checkFailure(t, strings.Join(c.args, " "), c.e.run(c.args...), c.code, c.msg, false)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("init without a password left %s behind (%v)", fresh, err)
	}
	// A doubled prefix is printed once.
	dd := filepath.Join(d, "engram")
	e.sim("generate", "--dir", dd, "--size", "200KB", "--spaces", "1", "--segment-size", "64KiB", "--dim", "16", "--seed", "2")
	r := e.wantFail(exitNotFound, "memento: space nosuch: not found: no directory ", "backup", "--data-dir", dd, "--space", "nosuch")
	if strings.Count(r.stderr, "space nosuch:") != 1 {
		t.Errorf("doubled prefix: %s", r.stderr)
	}
	// A space that exists but whose history does not reach the instant is
	// unrecoverable, not "not found".
	e.mustRun("backup", "--data-dir", dd, "--all")
	checkFailure(t, "restore of a known space before its first backup", e.run("restore", "--space", "space-a", "--at", "2000-01-01T00:00:00Z", "--target", filepath.Join(d, "t")), exitUnrecoverable, "space space-a", false)
}

func TestDedupPrefixes(t *testing.T) {
	for in, want := range map[string]string{
		"space a: space a: not found: x":       "space a: not found: x",
		"pack 1a2b: pack 1a2b: blob: hash":     "pack 1a2b: blob: hash",
		"a: b: a: b":                           "a: b: a: b",
		"plain":                                "plain",
		"x: x: x: y":                           "x: y",
		"ends with a colon: ":                  "ends with a colon: ",
		"interrupted: a: a (context canceled)": "interrupted: a: a (context canceled)",
	} {
		if got := dedupPrefixes(in); got != want {
			t.Errorf("dedupPrefixes(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFlagErrorJSON: a flag error stops cobra's parsing, but a --json
// anywhere before "--" still makes the error the JSON exit_error object.
func TestFlagErrorJSON(t *testing.T) {
	e := newEnv(t)
	const js = `{"message_type":"exit_error","code":2,"message":"unknown flag: --bogus"}` + "\n"
	const text = "memento: unknown flag: --bogus\n"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--json", "restore", "--bogus"}, js},
		{[]string{"restore", "--bogus", "--json"}, js},
		{[]string{"restore", "--bogus", "--json=true"}, js},
		{[]string{"restore", "--bogus", "--json=false"}, text},
		{[]string{"restore", "--bogus", "--", "--json"}, text},
	} {
		r := e.run(c.args...)
		if r.code != exitUsage || r.stderr != c.want || r.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", c.args, r.code, r.stdout, r.stderr, exitUsage, c.want)
		}
	}
}
