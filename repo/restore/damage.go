package restore

import (
	"context"
	"errors"
	"fmt"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// A restore with RestoreOptions.SkipDamaged writes every file whose chunks
// read and verify (from any copy the repository holds) and leaves out each
// file, or directory whose tree, that does not: the result is kept in place
// although it is incomplete, the one case where a restore keeps a partial
// result, because the operator asked for it. What was left out is listed in
// RestoreResult.Damaged and the restore returns a *PartialError, which is
// repo.ErrCorrupt (exit 5).

// DamagedPath is a file or directory a restore with SkipDamaged left out.
type DamagedPath struct {
	Path  string `json:"path"`            // inside the snapshot
	Kind  string `json:"kind"`            // "file" or "dir"
	Chunk string `json:"chunk,omitempty"` // the blob that could not be read, when known
	Pack  string `json:"pack,omitempty"`  // the pack the index places it in, when known
	Error string `json:"error"`
}

func (d DamagedPath) String() string {
	s := d.Kind + " " + d.Path
	if d.Chunk != "" {
		s += ": chunk " + d.Chunk
	}
	if d.Pack != "" {
		s += " in pack " + d.Pack
	}
	return s + ": " + d.Error
}

// PartialError is what a restore with SkipDamaged returns when it left
// anything out: the restored part is in place, Damaged lists the rest.
type PartialError struct {
	Target  string
	Damaged []DamagedPath
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("restore into %s is INCOMPLETE: %d damaged path(s) could not be read and are not in it (kept because of --skip-damaged)", e.Target, len(e.Damaged))
}

// Unwrap makes a partial restore a corruption (exit 5).
func (e *PartialError) Unwrap() error { return repo.ErrCorrupt }

// blobError names the blob a file's fetch failed on.
type blobError struct {
	id  chunk.ID
	loc index.Location
	err error
}

func (e *blobError) Error() string { return e.err.Error() }
func (e *blobError) Unwrap() error { return e.err }

// skippable reports whether err is damage a SkipDamaged restore steps over:
// corrupt or missing data, never a cancellation, a lost lock or a failure
// to write the target.
func (rs *restorer) skippable(err error) bool {
	if !rs.opts.SkipDamaged || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, repo.ErrLockLost) {
		return false
	}
	return errors.Is(err, repo.ErrCorrupt) || errors.Is(err, repo.ErrNotFound)
}

// noteDamaged records a left-out path.
func (rs *restorer) noteDamaged(kind, rel string, size uint64, err error) {
	d := DamagedPath{Path: repo.DisplayRel(rel), Kind: kind, Error: err.Error()}
	var be *blobError
	if errors.As(err, &be) {
		d.Chunk = be.id.String()
		if be.loc.Pack != ([32]byte{}) {
			d.Pack = fmt.Sprintf("%x", be.loc.Pack[:])
		}
		d.Error = be.err.Error()
	}
	rs.mu.Lock()
	rs.damaged = append(rs.damaged, d)
	if kind == "file" {
		rs.damagedFiles++
		rs.damagedBytes += size
	}
	rs.mu.Unlock()
}
