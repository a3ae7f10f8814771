// Package inspect answers questions about stored snapshots without
// restoring them: it walks their trees (Walk), finds files by pattern
// across snapshots (Find), compares two snapshots (Diff), sums their sizes
// and deduplication (Stats), streams a file or a directory as a tar archive
// (Dump), and gathers the one-screen summary of a repository (Info).
package inspect
