package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"memento/engram"
	"memento/walreplay"
)

// truthLine is one line of the ground-truth JSON-lines file: the state
// digest of space after the entry with this sequence (and timestamp).
type truthLine struct {
	Space       string `json:"space"`
	Sequence    uint64 `json:"sequence"`
	TimestampNS int64  `json:"timestamp_ns"`
	Digest      string `json:"digest"`
	// DigestV2 is the state digest version 2 (walreplay.DigestKindLtHash),
	// what format-5 repositories record (serve's digest endpoint leaves it
	// out).
	DigestV2 string `json:"digest_v2,omitempty"`
	timelineTag
}

// timelineTag says which timeline (docs/pitr.md, "Timelines") the data
// dir's space was on when a truth line was written, from
// DIR/.memento/timelines.json. Lines written before the tag existed have
// none of these fields (Timeline 0: unknown). A restore that left a pending
// fork (not yet recorded by an archive) puts the space on a timeline whose
// number the repository assigns later: TimelinePending, with Timeline 0 and
// the fork point (ForkTimeline, ForkSeq); entries up to ForkSeq are shared
// with ForkTimeline.
type timelineTag struct {
	Timeline        uint32 `json:"timeline,omitempty"`
	TimelinePending bool   `json:"timeline_pending,omitempty"`
	ForkTimeline    uint32 `json:"fork_timeline,omitempty"`
	ForkSeq         uint64 `json:"fork_seq,omitempty"`
}

// readTimelineTag reads the timeline of space in the data dir dir.
func readTimelineTag(dir, space string) (timelineTag, error) {
	tl, err := engram.ReadTimelines(dir)
	if err != nil {
		return timelineTag{}, err
	}
	if f := tl.Fork(space); f != nil {
		return timelineTag{TimelinePending: true, ForkTimeline: tl.Of(space), ForkSeq: f.Seq}, nil
	}
	return timelineTag{Timeline: tl.Of(space)}, nil
}

func stateLine(space string, st *walreplay.State) truthLine {
	d := st.Digest()
	// Version 2 is maintained by the State from here on (DigestOf computes
	// it once and then tracks it), so the next lines cost no second pass.
	d2, err := st.DigestOf(walreplay.DigestKindLtHash)
	if err != nil { // cannot happen: a plain State is never stale
		panic(err)
	}
	return truthLine{Space: space, Sequence: st.LastSeq(), TimestampNS: st.LastTimestamp(), Digest: hex.EncodeToString(d[:]), DigestV2: hex.EncodeToString(d2[:])}
}

// truthTracker applies a space's entries to a walreplay.State and emits a
// truth line every `every` entries and at the end.
//
// A line is emitted only at an entry whose successor has a later timestamp,
// so every line holds both for "state at sequence S" and for "state at time
// T": when the N-th entry shares its timestamp with the next ones, the line
// moves to the last entry of that run. (The final line is written at the
// last entry present; a later continuation of the log could in principle
// reuse its timestamp.)
//
// Cost: State.Apply copies each payload (~3 KiB); every line costs a digest,
// O(live state): BLAKE3 over all live records plus sorting the ids, about
// 10-30 ms per 100 MB of live state. Keep `every` at thousands of entries.
type truthTracker struct {
	space   string
	st      *walreplay.State
	every   uint64
	pending bool
	last    uint64 // sequence of the last emitted line, to avoid duplicates
	emitted bool
	emit    func(truthLine) error
}

func newTruthTracker(space string, st *walreplay.State, every uint64, emit func(truthLine) error) *truthTracker {
	return &truthTracker{space: space, st: st, every: every, emit: emit}
}

// apply applies e, first emitting a pending line if e starts a later instant.
func (t *truthTracker) apply(e *walreplay.Entry) error {
	if t.pending && e.TimestampNS > t.st.LastTimestamp() {
		if err := t.line(); err != nil {
			return err
		}
	}
	if err := t.st.Apply(e); err != nil {
		return err
	}
	if t.every > 0 && e.Seq%t.every == 0 {
		t.pending = true
	}
	return nil
}

func (t *truthTracker) line() error {
	t.pending = false
	if t.emitted && t.last == t.st.LastSeq() {
		return nil
	}
	t.emitted, t.last = true, t.st.LastSeq()
	return t.emit(stateLine(t.space, t.st))
}

// final emits the line for the last entry applied.
func (t *truthTracker) final() error { return t.line() }

// jsonlFile is a JSON-lines file shared by the goroutines of all spaces.
// Lines are buffered and flushed by flush (after each batch) and close.
type jsonlFile struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// openJSONL opens path for appending (ground truth accumulates across runs
// that resume a dir); "" gives a nil file whose methods do nothing.
func openJSONL(path string) (*jsonlFile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &jsonlFile{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// jsonLine marshals v followed by a newline.
func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(b, '\n'), err
}

func (j *jsonlFile) write(v any) error {
	if j == nil {
		return nil
	}
	b, err := jsonLine(v)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.w.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", j.f.Name(), err)
	}
	return nil
}

func (j *jsonlFile) flush() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", j.f.Name(), err)
	}
	return nil
}

// close flushes, fsyncs and closes: ground truth must survive the crash
// that run --crash-after simulates.
func (j *jsonlFile) close() error {
	if j == nil {
		return nil
	}
	if err := j.flush(); err != nil {
		j.f.Close()
		return err
	}
	if err := j.f.Sync(); err != nil {
		j.f.Close()
		return fmt.Errorf("fsync %s: %w", j.f.Name(), err)
	}
	return j.f.Close()
}
