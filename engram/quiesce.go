package engram

import (
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Signals of the quiesce protocol: a running Engram pauses its writes to
// the tiers and checkpoint.json on PauseSignal and resumes on ResumeSignal.
const (
	PauseSignal  = syscall.SIGUSR1
	ResumeSignal = syscall.SIGUSR2
)

// Quiescer pauses the database once for all spaces being backed up in
// parallel: the first space to start reading its tiers pauses it (Acquire),
// the last one to finish them resumes it (Release), so the pause covers
// exactly the union of the tier reads. It is safe for concurrent use.
type Quiescer struct {
	// OnResume, if set, is called after each resume (under the Quiescer's
	// lock) with how long the database was paused.
	OnResume func(paused time.Duration)

	mu     sync.Mutex
	n      int
	since  time.Time
	pause  func() error
	resume func() error
}

// NewQuiescer returns a Quiescer that runs pause and resume.
func NewQuiescer(pause, resume func() error) *Quiescer {
	return &Quiescer{pause: pause, resume: resume}
}

// NewSignalQuiescer pauses the Engram process pid with PauseSignal and
// resumes it with ResumeSignal.
func NewSignalQuiescer(pid int) *Quiescer {
	return NewQuiescer(func() error { return Signal(pid, PauseSignal) },
		func() error { return Signal(pid, ResumeSignal) })
}

// Hook is a shell command run to pause or resume the database.
type Hook struct {
	Name    string    // how errors name it, e.g. "--pre-hook"
	Command string    // run by /bin/sh -c
	Output  io.Writer // the command's stdout and stderr (nil: discarded)
}

// NewHookQuiescer runs the hook pause to pause the database and resume to
// resume it.
func NewHookQuiescer(pause, resume Hook) *Quiescer {
	return NewQuiescer(pause.Run, resume.Run)
}

// Acquire pauses the database unless it is paused already.
func (q *Quiescer) Acquire() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		if err := q.pause(); err != nil {
			return err
		}
		q.since = time.Now()
	}
	q.n++
	return nil
}

// Release resumes the database when no other Acquire holds it. Call it
// once for each successful Acquire.
func (q *Quiescer) Release() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n--
	if q.n > 0 {
		return nil
	}
	err := q.resume()
	if q.OnResume != nil {
		q.OnResume(time.Since(q.since))
	}
	return err
}

// Signal sends sig to the process pid.
func Signal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, err)
	}
	return nil
}

// Run runs the hook's command and waits for it; a failure (including a
// non-zero exit) is an error naming the hook.
func (h Hook) Run() error {
	cmd := exec.Command("/bin/sh", "-c", h.Command)
	cmd.Stdout, cmd.Stderr = h.Output, h.Output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %q: %w", h.Name, h.Command, err)
	}
	return nil
}
