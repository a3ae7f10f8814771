// Package restore materialises a snapshot or a point in time of a space into
// a directory, staged beside the target and swapped in durably.
//
// Restore writes a snapshot; RestorePointInTime writes a space as it was at
// an instant, from the snapshot and WAL that package pitr plans. Both build
// the result in a staging directory beside the target, verify every chunk
// and file while writing, put it on disk and only then swap it into place
// (one path, stageAndSwap), keeping what was there as a safety copy.
package restore
