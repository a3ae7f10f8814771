// Package chunk turns a byte stream into the content-defined, deduplicated,
// compressed chunks that memento stores.
//
// The pieces, in stream order:
//
//   - [Chunker] cuts the stream with a Rabin fingerprint (restic/chunker),
//     so an insertion or an in-place rewrite only changes the chunks around
//     it; [ParamsFor] picks the chunk sizes per kind of Engram file.
//   - [Key.Sum] names a chunk by its keyed BLAKE3-256 ([ID]). Every space has
//     its own key ([DeriveKey]), so equal bytes in two spaces never share an
//     ID and a repository reveals nothing about which plaintexts it holds.
//   - [Compress] / [Decompress] apply zstd, optionally after a float32 byte
//     shuffle, and fall back to storing raw bytes when compression does not pay.
//   - [Pipeline] runs all of this on every core: the caller's goroutine reads
//     and chunks sequentially, a shared pool of workers hashes and compresses.
//
// The package imports nothing else from memento: chunk IDs, chunk boundaries
// and the stored form are part of the repository format and must never change
// silently (see testdata/golden.json).
package chunk
