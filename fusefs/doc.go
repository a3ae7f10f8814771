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
//	hosts/<host>/<short-id> -> ../../snapshots/<short-id>   (and latest)
//	tags/<tag>/<short-id> -> ../../snapshots/<short-id>     (and latest)
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
// Every byte served comes from Repository.ReadBlob, which authenticates,
// decompresses and checks each chunk against its ID. A chunk that fails gives
// EIO for that read and one log line naming the snapshot, the file and the
// chunk; wrong bytes are never returned. Inode numbers are a hash of the
// snapshot ID and the path inside it, so they are stable across lookups,
// forgets and remounts.
package fusefs
