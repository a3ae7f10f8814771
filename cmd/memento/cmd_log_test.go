package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"memento/repo/backend/s3"
)

// TestNoteAuditLost: audit records the repository itself kept out of the
// trail (a full file system, an unreachable endpoint) are said once: on the
// command's error line when it names the same cause, else as one warning
// with their count; never a line per record.
func TestNoteAuditLost(t *testing.T) {
	full := fmt.Errorf("audit record: write log logs/ab: local backend: %w", syscall.ENOSPC)
	cut := fmt.Errorf("audit record: write log logs/ab: s3 backend: %w: connection stalled", s3.ErrUnreachable)
	for _, c := range []struct {
		name    string
		lost    error
		n       int
		cmdErr  error
		wantErr string // "" when the command succeeded
		wantLog string // "" for no warning
	}{
		{"full, the command failed for it", full, 2, fmt.Errorf("write pack 1a: %w", syscall.ENOSPC),
			"write pack 1a: no space left on device; 2 audit records not written either", ""},
		{"unreachable, the command failed for it", cut, 1, fmt.Errorf("write pack 1a: %w: stalled", s3.ErrUnreachable),
			"write pack 1a: endpoint unreachable: stalled; 1 audit record not written either", ""},
		{"unreachable, the command failed for another cause", cut, 1, errors.New("snapshot 1a: not found"),
			"snapshot 1a: not found", "memento: warning: could not append to the audit trail records=1 err=\"" + cut.Error() + "\"\n"},
		{"full, the command succeeded", full, 3, nil,
			"", "memento: warning: could not append to the audit trail records=3 err=\"" + full.Error() + "\"\n"},
		{"none lost", nil, 0, errors.New("snapshot 1a: not found"), "snapshot 1a: not found", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log strings.Builder
			level := new(slog.LevelVar)
			level.Set(slog.LevelWarn)
			a := &app{log: newLogger(&log, logText, level), auditLost: c.n, auditLostErr: c.lost, auditLostCause: auditLostCause(c.lost)}
			err := a.noteAuditLost(c.cmdErr)
			if got := fmt.Sprint(err); c.wantErr == "" && err != nil || c.wantErr != "" && got != c.wantErr {
				t.Errorf("error %q, want %q", got, c.wantErr)
			}
			if c.cmdErr != nil && !errors.Is(err, c.cmdErr) {
				t.Errorf("the error no longer wraps the command's (exit code): %v", err)
			}
			if log.String() != c.wantLog {
				t.Errorf("log %q, want %q", log.String(), c.wantLog)
			}
		})
	}
	if auditLostCause(errors.New("audit record: permission denied")) != nil {
		t.Error("a permission error counted as the repository itself failing")
	}
}
