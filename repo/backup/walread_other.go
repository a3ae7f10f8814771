//go:build !linux

package backup

import "memento/walreplay"

// walBatchReader is nil without io_uring (Linux's): a replay reads the old
// payloads with a pread each (see walread_linux.go).
func walBatchReader() walreplay.BatchReader { return nil }
