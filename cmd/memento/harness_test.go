package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// End-to-end tests drive the real binaries, built once per test run by TestMain.
var (
	mementoBin   string
	engramSimBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "memento-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mementoBin = filepath.Join(dir, "memento")
	engramSimBin = filepath.Join(dir, "engram-sim")
	for bin, pkg := range map[string]string{mementoBin: ".", engramSimBin: "../engram-sim"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's world: a repository, a cache dir and a password.
type env struct {
	t        *testing.T
	repo     string
	cache    string
	password string
	extra    []string // more KEY=VALUE environment entries
	dir      string   // the working directory of the runs ("": the test's)
}

// newEnv makes a fresh environment with an initialized repository.
func newEnv(t *testing.T) *env {
	t.Helper()
	d := t.TempDir()
	e := &env{t: t, repo: filepath.Join(d, "repo"), cache: filepath.Join(d, "cache"), password: "correct horse"}
	e.mustRun("init")
	return e
}

// result is what one run of a binary did.
type result struct {
	stdout, stderr string
	code           int
}

func (e *env) environ() []string {
	env := []string{"MEMENTO_REPOSITORY=" + e.repo, "MEMENTO_CACHE_DIR=" + e.cache, "MEMENTO_PASSWORD=" + e.password,
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	return append(env, e.extra...)
}

// run executes memento with args and returns its output and exit code.
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runBin(mementoBin, args...)
}

func (e *env) runBin(bin string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir = e.environ(), e.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return result{out.String(), errb.String(), code}
}

// mustRun runs memento and fails the test unless it exits 0.
func (e *env) mustRun(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("memento %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// sim runs engram-sim and fails the test unless it exits 0.
func (e *env) sim(args ...string) string {
	e.t.Helper()
	r := e.runBin(engramSimBin, args...)
	if r.code != 0 {
		e.t.Fatalf("engram-sim %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// wantFail runs memento, requires exit code want and a stderr containing msg,
// and requires the error to be a single line.
func (e *env) wantFail(want int, msg string, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != want {
		e.t.Fatalf("memento %s: exit %d, want %d\nstderr: %s", strings.Join(args, " "), r.code, want, r.stderr)
	}
	if !strings.Contains(r.stderr, msg) {
		e.t.Fatalf("memento %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, msg)
	}
	var errLines int
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		// Warnings share the "memento: " prefix (one log format); the
		// error that ends the command has no level word.
		if strings.HasPrefix(l, "memento: ") && !strings.HasPrefix(l, "memento: warning: ") && !strings.HasPrefix(l, "memento: info: ") &&
			!strings.HasPrefix(l, "memento: debug: ") {
			errLines++
		}
	}
	if errLines != 1 {
		e.t.Fatalf("memento %s: want exactly one error line, got:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}
