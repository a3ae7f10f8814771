// Package fusefs serves the snapshots of a repository, and the points in time
// of its spaces, as a read-only FUSE filesystem.
//
// Layout:
//
//	snapshots/<short-id>/...                  a snapshot's tree, as backed up
//	snapshots/latest -> <short-id>
//	spaces/<space>/latest -> ../../snapshots/<short-id>
//	spaces/<space>/by-time/<RFC 3339 time> -> ../../../snapshots/<short-id>
//	spaces/<space>/at/<T>/                     the space as recovered at instant T
//	spaces/<space>/timelines/<n>/at/<T>/        ... on timeline n
//	hosts/<host>/<short-id> -> ../../snapshots/<short-id>   (and latest)
//	hosts/<host>/spaces/<space>/...             as spaces/<space>/, of host's one database
//	hosts/<host>/identities/<id>/spaces/<space>/...         of database <id>
//	tags/<tag>/<short-id> -> ../../snapshots/<short-id>     (and latest)
//
// A space is one database's: spaces/<space>/ shows the only database
// (identity) whose snapshots have it, hosts/<host>/spaces/<space>/ the only
// one of that host, identities/<id>/ the one named (databases.go). Where
// several databases have the space, the directory holds only a README and
// an at/ naming each one's directory, and recovers nothing: no directory
// mixes two databases' snapshots or WAL.
//
// Nothing is read until it is looked up: mounting reads no tree, a directory
// reads its tree blob when it is first listed or searched, a file computes its
// chunk layout from the index when it is opened and fetches chunks only when
// they are read. Snapshot content is immutable, so the kernel may cache it for
// long (entry and attribute timeouts of an hour, FOPEN_KEEP_CACHE); the
// generated directories above a snapshot change when backups run, so they are
// cached for a second and re-read the catalog (Repository.Sync) when it is
// older than Options.RefreshInterval.
//
// <space>/at/ holds a README listing the recoverable ranges
// (pitr.Planner.PITRRanges, read when it is opened) and accepts any absolute
// instant `memento restore --at` accepts as a name (ParseInstant); instants are
// never listed, so a recursive walk recovers nothing. Options.PointInTime
// recovers an instant on its first lookup, once however many lookups of it
// (under any of its names) arrive together; an instant that cannot be
// recovered answers ENOENT with one log line saying why. A recovery into a
// directory (PointInTime.Dir) is served as a read-only passthrough of its
// files; at most Options.PointInTimeViews stay materialized (the least
// recently used one that no open file or running operation holds is dropped
// through PointInTime.Close, and recovered again if it is used again), and
// all are dropped at unmount. Its Lazy files (memories.jsonl) are listed at
// once but written only on the first stat or open. The bytes of such a view
// were verified when the recovery restored them (every chunk against its ID,
// every WAL segment against its BLAKE3) into a directory private to the
// mount process. Recoverer is the PointInTimeFunc memento mount uses: each
// instant is a point-in-time restore (restore.RestorePointInTime) into its
// own directory below the cache dir's mount-pitr/<pid>-*/, with state.json
// and a lazy memories.jsonl beside it, all removed by Cleanup.
//
// Snapshot files, directories, symlinks and special files serve the
// extended attributes their tree nodes recorded (xattr.go), read-only;
// hard-linked files share one inode number and show the link count.
//
// Sequential reading is what a mount is mostly used for (cp, dd, diff -r),
// so its cost is per request and per chunk, not per byte: the mount raises
// the kernel's readahead for itself (Options.KernelReadahead, 4 MiB, so the
// kernel sends 1 MiB reads, several at once; it needs root), a read that
// spans many chunks fetches those it lacks together, and a sequential reader
// has the next 16 MiB fetched in batches of about 1 MiB by prefetch workers
// (twice as many as cores), so that decrypting, decompressing and hashing
// run on every core (memento mount gives the Go scheduler two Ps per core,
// so goroutines blocked in system calls do not keep the others waiting). A
// batch is one ranged read per run of neighbouring blobs in a pack
// (Repository.StreamBlobs; around the page cache for a local repository),
// and the local backend keeps packs open between reads, so a page file of
// 32 KiB chunks costs no more requests than one of 1 MiB chunks. Reads that
// arrive out of order by up to two kernel readahead windows still count as
// sequential. Chunks a sequential reader has left more than 8 MiB behind
// leave the cache (the kernel's page cache has them), so the heap stays
// small and decoded chunks reuse freed memory instead of faulting in fresh
// pages. Runs are read, and chunks decoded, into a slab of 64 MiB the mount
// faults in as it starts (with transparent huge pages where the kernel
// grants them), handed out in power-of-two blocks and recycled: a
// block returns when its run is opened, or when the cache drops its chunk
// and no read has it pinned (a read copies the bytes it serves into the
// request's buffer, then unpins). On a VM, first touching a page costs
// more than decrypting and decompressing it, and a fresh mount has nothing
// to reuse: a cold segment's first read spent half its CPU on page
// faults. What the slab cannot hold comes from the Go heap as before. The
// caches are bounded; the Go soft
// memory limit is raised to hold them (the GC would otherwise run back to
// back once they fill).
//
// Every snapshot byte served comes from Repository.StreamBlobs, which
// authenticates, decompresses and checks each chunk against its ID exactly
// as ReadBlob does. A chunk whose pack is damaged is read from another pack
// holding a copy of it, when the index knows one (as restore does), with a
// warning naming the damaged pack. A chunk that fails anyway gives
// EIO for that read and one log line naming the snapshot, the file and the
// chunk; wrong bytes are never returned. Inode numbers are a hash of the
// snapshot ID and the path inside it, so they are stable across lookups,
// forgets and remounts.
package fusefs
