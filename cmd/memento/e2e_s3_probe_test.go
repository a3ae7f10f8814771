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
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
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
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	cmd := exec.Command(mementoBin, "--repo", "s3:http://"+ln.Addr().String()+"/bucket", "snapshots")
	cmd.Env = append(e.environ(), "AWS_ACCESS_KEY_ID=memento", "AWS_SECRET_ACCESS_KEY=memento-secret")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("memento never connected to the endpoint:\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("Ctrl-C did not stop the wait for the S3 endpoint within a minute:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Fatalf("exit %d, want %d: %s", code, exitInterrupted, out.String())
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Fatalf("output does not say it was interrupted: %q", out.String())
	}
}
