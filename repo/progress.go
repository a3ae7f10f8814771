package repo

import "sync/atomic"

// Progress is updated atomically while a backup or restore runs, so a
// progress bar can poll it from another goroutine.
type Progress struct {
	Files     atomic.Int64
	Bytes     atomic.Int64 // bytes read (backup) or written (restore)
	NewBytes  atomic.Int64 // raw bytes of new chunks
	Unchanged atomic.Int64 // files skipped by change detection
}
