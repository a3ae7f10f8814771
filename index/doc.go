// Package index caches, in a local bbolt file, where every blob of a
// repository lives and which snapshots exist, so that backup (dedup) and
// restore (blob lookups) never have to read the repository's index files.
//
// The cache is disposable: the truth lives in the repository's immutable
// index files, packs and manifests, and `memento index rebuild` recreates the
// file from them (Reset or Recreate, then AddFile for every index file).
//
// Several memento processes (two backups at once) share one cache file, and
// bbolt holds an exclusive flock for as long as a database is open
// read-write. An Index therefore never keeps the file open: every method
// opens it, runs its transaction and closes it again, so processes
// take turns per call instead of one process locking out the others for a
// whole backup. Methods are batch-oriented (AddFile merges a whole index
// file, Lookup resolves thousands of IDs) so the per-call open stays cheap.
// One method runs several transactions on its one open: AddFiles of more
// than mergeBatchDefault blob locations commits them in batches, in key
// order, so that no transaction holds the pages of the whole tree.
// Read-only methods open the file read-only, which takes a shared lock, so
// readers run in parallel.
//
// Layout (format version 1, stored in the meta bucket):
//
//	meta       "version" -> 1 byte; "repo" -> repository id (see Bind)
//	files      repository index file name -> pack IDs it lists (32 bytes each);
//	           name+".merging" -> the same, while a batched merge of the file
//	           is under way or was cut off (LoadedFiles reports it not loaded)
//	packs      pack ID -> pack record (size, blob count, space, listing files)
//	spaces     one nested bucket per space: blob ID -> 1..n Locations (46 bytes each)
//	snapshots  snapshot ID -> SnapshotEntry as JSON
//
// Blobs live in one bucket per space so that a lookup for space A never
// touches space B's pages, mirroring the repository's per-space isolation.
package index
