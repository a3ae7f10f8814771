// Package backup turns files and Engram spaces into snapshots: it chunks,
// dedups and packs what changed, and records the space's WAL position and
// state digest.
//
// Backup reads a file tree (or one Engram space of a data dir) and stores it
// in a repository as a signed manifest over a tree of content-addressed blobs;
// EngramRecorder fills the manifest's EngramInfo while the backup of a space
// runs (docs/pitr.md).
package backup
