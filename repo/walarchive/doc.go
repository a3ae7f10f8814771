// Package walarchive archives an Engram space's WAL segments into the
// repository, continuously or once, and keeps the archive's records.
//
// A WALArchiver ships what is new in a space's WAL directory since the last
// run (ArchiveSpace); a Watcher runs it whenever a space's WAL changes or its
// poll interval passes (`memento wal watch`); CompactWAL compacts the
// archived leading segments of a data dir's WAL. The archive's records (the
// wal/ files of the repository) are described in docs/repository-format.md,
// "WAL archive".
package walarchive
