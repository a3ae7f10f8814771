package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"memento/repo"
)

// A command stopped because it lost its lock exits 6 and says so, also
// when what it returned was the cancellation.
func TestExitCodeOfLostLock(t *testing.T) {
	lost := fmt.Errorf("%w: lock 1a2b3c4d of backup was removed by another process", repo.ErrLockLost)
	if got := exitCode(lost); got != exitLocked {
		t.Errorf("exitCode(lost lock) = %d, want %d", got, exitLocked)
	}
	if got := exitCode(fmt.Errorf("backup: %w", context.Canceled)); got != exitInterrupted {
		t.Errorf("exitCode(cancelled) = %d, want %d", got, exitInterrupted)
	}
	joined := fmt.Errorf("%w; then: %v", lost, errors.New("write pack: EIO"))
	if got := exitCode(joined); got != exitLocked {
		t.Errorf("exitCode(%v) = %d, want %d", joined, got, exitLocked)
	}
}
