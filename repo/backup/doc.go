// Package backup turns files and Engram spaces into snapshots: it chunks,
// dedups and packs what changed, and records the space's WAL position and
// state digest.
//
// Backup reads a file tree (or one Engram space of a data dir) and stores it
// in a repository as a signed manifest over a tree of content-addressed blobs;
// EngramRecorder fills the manifest's EngramInfo while the backup of a space
// runs (docs/pitr.md).
//
// # Change detection
//
// A backup compares every regular file with the node of the same path in
// the parent snapshot (the latest of the same space or the same paths, or
// the one given) and keeps the parent's content list without reading the
// file when all of these hold, the rules restic applies by default:
//
//   - the parent's node is a regular file with a BLAKE3 and, unless empty,
//     a content list;
//   - size, mtime and ctime (both to the nanosecond) and inode are equal:
//     ctime catches a write that put the mtime back (only the kernel sets
//     ctime), the inode a file replaced by a rename;
//   - every chunk of the content list is in a pack the repository has at
//     the size the index says (KnownBlobs reconciles the index with data/
//     first), so a lost pack is never referenced again: the file is read
//     and its chunks stored anew.
//
// What escapes it is what escapes restic: a file rewritten with the same
// size within the file system's timestamp granularity (1 s or 2 s on some
// file systems, not ext4, xfs or btrfs) while keeping its inode, and a clock
// set back. `backup --force` reads every file.
//
// The walk of a path backup visits up to maxConcurrentDirs directories at
// once and reads up to maxConcurrentFiles files at once; the trees it
// stores do not depend on the order (each directory's nodes are sorted).
// A listed directory stays open while its entries are walked: each entry is
// looked up relative to it (fstatat, listxattrat, readlinkat, and openat for
// a batch's files: at.go), not by its full path; files read by workers are
// opened there too (openat, O_NOFOLLOW), the descriptor held open until the
// last of them is (dirHandle). A subdirectory is listed by its full path
// after its parent's walk: it is opened with O_NOFOLLOW (unless it is a
// symlink followed on purpose) and must be the directory the walk looked
// up (device and inode), or sit in its parent as listed (a mount an open
// triggered, a directory renamed into place), or be the directory reached
// from the backup's root through directories only (a file system that
// renumbers directories whose inodes left the cache: an overlay of two
// file systems); a directory replaced by a symlink, or below one swapped
// in above it, fails the backup naming it instead of being read out of the
// tree (listDir).
// A directory's subdirectories are walked while its files are still being
// saved (a space backup, whose hooks follow the walk's order, saves them
// first); its tree is stored once both are done. On Linux it reads a
// directory's small files in batches, each batch's reads in one io_uring
// submission (batch.go; a second one confirms their
// ends and closes them), so that the reads of files lying side
// by side on the disk reach it as one request; where io_uring is missing or
// refused (the kernel, found once; a file system, per device), at low
// descriptor limits (a batch holds at most a share of them: batchFDs), and
// for any file a batch could not read whole, each file is read with read(2)
// as before. The parent snapshot's trees are read per directory level, and
// the trees below a level that was not read yet are read ahead, a level at
// a time, into a bounded set (ahead.go) that the directories take theirs
// from as they are walked. A pack write that fails stops the walk: the backup fails with
// that error without reading the rest.
//
// In a repository of format 6 a path backup stores the small files it adds
// (64 B to 256 KiB, not WAL, warm or cold files) as members of group blobs:
// the small-file workers append them to a few open groups, each stored,
// compressed once, when it reaches 1 MiB, and the last ones when the walk
// has succeeded (group.go). An Engram space's few small files are stored
// alone.
package backup
