// Package engram describes the Engram data directory memento backs up: its
// layout, its metadata files, space ids, and how to pause a running Engram for
// a consistent copy (see docs/engram-format.md).
//
// Like walreplay, which describes the WAL, the package is a leaf: it imports
// nothing else from memento, so that the backup side (package repo and
// cmd/memento) and the simulator (cmd/engram-sim, which writes data dirs)
// share one definition of every path, file and rule, and agree by
// construction.
//
// Files:
//   - layout.go: the names of the entries of a data dir and of a space, and
//     path helpers.
//   - checkpoint.go, metadata.go: checkpoint.json and metadata.json, with
//     their parsers and encoders.
//   - space.go: space ids and the listing of a data dir's spaces.
//   - quiesce.go: pausing and resuming a running Engram around a copy.
package engram
