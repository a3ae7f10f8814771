package engram

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestQuiescerRefcount: overlapping holders pause once and resume once,
// when the last one releases; a new round pauses again.
func TestQuiescerRefcount(t *testing.T) {
	var log []string
	q := NewQuiescer(func() error { log = append(log, "pause"); return nil },
		func() error { log = append(log, "resume"); return nil })
	var resumed []time.Duration
	q.OnResume = func(d time.Duration) { resumed = append(resumed, d) }
	var wg sync.WaitGroup
	start := make(chan struct{})
	if err := q.Acquire(); err != nil { // holds the pause while the others come and go
		t.Fatal(err)
	}
	for range 8 {
		wg.Go(func() {
			<-start
			if err := q.Acquire(); err != nil {
				t.Error(err)
				return
			}
			if err := q.Release(); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	time.Sleep(time.Millisecond)
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(log, ",") != "pause,resume" || len(resumed) != 1 || resumed[0] < time.Millisecond {
		t.Fatalf("log %v, resumed %v", log, resumed)
	}
	q.Acquire()
	q.Release()
	if strings.Join(log, ",") != "pause,resume,pause,resume" {
		t.Fatalf("second round: %v", log)
	}
}

// TestQuiescerErrors: a failed pause holds nothing (the next Acquire tries
// again); a failed resume is returned and still reported.
func TestQuiescerErrors(t *testing.T) {
	pauses, failPause, failResume := 0, true, true
	q := NewQuiescer(func() error {
		pauses++
		if failPause {
			return errors.New("pause failed")
		}
		return nil
	}, func() error {
		if failResume {
			return errors.New("resume failed")
		}
		return nil
	})
	called := 0
	q.OnResume = func(time.Duration) { called++ }
	if err := q.Acquire(); err == nil || err.Error() != "pause failed" {
		t.Fatalf("Acquire = %v", err)
	}
	failPause = false
	if err := q.Acquire(); err != nil || pauses != 2 {
		t.Fatalf("Acquire = %v after %d pauses", err, pauses)
	}
	if err := q.Release(); err == nil || err.Error() != "resume failed" || called != 1 {
		t.Fatalf("Release = %v, OnResume called %d times", err, called)
	}
}

func TestHookQuiescer(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "paused")
	var out bytes.Buffer
	q := NewHookQuiescer(Hook{Name: "--pre-hook", Command: "touch " + mark + "; echo paused", Output: &out},
		Hook{Name: "--post-hook", Command: "rm " + mark + "; echo resumed", Output: &out})
	if err := q.Acquire(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("pre-hook did not run: %v", err)
	}
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); !os.IsNotExist(err) {
		t.Fatalf("post-hook did not run: %v", err)
	}
	if out.String() != "paused\nresumed\n" {
		t.Fatalf("hook output %q", out.String())
	}
	err := Hook{Name: "--pre-hook", Command: "exit 3"}.Run()
	if err == nil || err.Error() != `--pre-hook "exit 3": exit status 3` {
		t.Fatalf("failing hook: %v", err)
	}
}

// TestSignalQuiescer pauses and resumes this very process, which catches
// the two signals.
func TestSignalQuiescer(t *testing.T) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, PauseSignal, ResumeSignal)
	defer signal.Stop(ch)
	q := NewSignalQuiescer(os.Getpid())
	if err := q.Acquire(); err != nil {
		t.Fatal(err)
	}
	if s := recvSignal(t, ch); s != PauseSignal {
		t.Fatalf("got %v, want %v", s, PauseSignal)
	}
	if err := q.Release(); err != nil {
		t.Fatal(err)
	}
	if s := recvSignal(t, ch); s != ResumeSignal {
		t.Fatalf("got %v, want %v", s, ResumeSignal)
	}
	// No such process: the error names the signal and the pid.
	if err := Signal(1<<30, PauseSignal); err == nil || !errors.Is(err, syscall.ESRCH) ||
		!strings.Contains(err.Error(), "to pid 1073741824") {
		t.Fatalf("Signal to no process: %v", err)
	}
}

func recvSignal(t *testing.T, ch chan os.Signal) os.Signal {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no signal")
		return nil
	}
}
