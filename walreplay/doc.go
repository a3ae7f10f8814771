// Package walreplay reads, writes, validates, searches and replays the Engram
// WAL v1 (see docs/engram-format.md) into an in-memory state with a digest.
//
// The package is self-contained (it imports nothing else from memento) because
// both the backup side (archiving and proving WAL chains) and the simulator
// (cmd/engram-sim, which writes WALs) must agree on the same bytes; keeping
// the format in one leaf package makes that agreement a compile-time fact.
//
// Layers, bottom up:
//   - entry.go, record.go: byte encodings of an entry and of its payloads.
//   - segment_reader.go: streams the entries of one segment with bounded memory.
//   - validator.go: the cross-entry rules (sequence continuity, timestamps,
//     segment names, compacted runs) shared by every reader of a whole log.
//   - log.go, search.go, replay.go: a WAL directory, binary search, replay.
//   - state.go: the id -> record map and its digest (version 1).
//   - lthash.go: the state digest version 2, a multiset hash the replay
//     maintains entry by entry; resume.go: checkpoints that carry it;
//     mark.go: the last entry before a point an earlier listing saw, found
//     by a replay as it goes (a backup's WAL start).
//   - writer.go, compact.go: producing segments.
package walreplay
