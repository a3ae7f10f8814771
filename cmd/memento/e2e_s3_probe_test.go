package main

import (
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Ctrl-C stops a command that is still waiting for an S3 endpoint to answer
// its first request (the probe allows two minutes): exit 130 at once. The
// endpoint is a loopback listener that accepts and never answers.
func TestS3ProbeInterrupted(t *testing.T) {
	r := newEnv(t).interruptedRun(false)
	if r.code != exitInterrupted {
		t.Fatalf("exit %d, want %d: %s", r.code, exitInterrupted, r.stderr)
	}
	if !strings.Contains(r.stderr, "interrupted") {
		t.Fatalf("output does not say it was interrupted: %q", r.stderr)
	}
}

// interruptedRun runs a command that waits for an S3 endpoint that never
// answers, sends SIGINT once it connected, and returns what it did.
func (e *env) interruptedRun(js bool) result {
	e.t.Helper()
	addr, accepted := hangingEndpoint(e.t)
	args := []string{"--repo", "s3:http://" + addr + "/bucket", "snapshots"}
	if js {
		args = append(args, "--json")
	}
	cmd := exec.Command(mementoBin, args...)
	cmd.Env = append(e.environ(), "AWS_ACCESS_KEY_ID=memento", "AWS_SECRET_ACCESS_KEY=memento-secret")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		e.t.Fatalf("memento never connected to the endpoint:\n%s", errb.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute): // the probe itself would wait two
		_ = cmd.Process.Kill()
		e.t.Fatalf("Ctrl-C did not stop the wait for the S3 endpoint within a minute:\n%s", errb.String())
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// hangingEndpoint is a TCP endpoint that accepts connections and never
// answers; accepted receives once a connection came in.
func hangingEndpoint(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 1)
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never answered
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ln.Addr().String(), ch
}
