// Package pitr answers which instants of a space are recoverable and how to
// reach one: the base snapshot, the WAL chain after it and the replay cut.
//
// A Planner pairs the space's Engram snapshots with its WAL archive: its
// PITRRanges lists what can be recovered, its Plan picks the snapshot to
// start from for an instant. Continuation lists the archived segments that
// lead from the snapshot to the instant, and ReplayAndCut replays a restored
// WAL to it and cuts the log there. Package restore writes the files.
package pitr
