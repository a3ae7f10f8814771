package repo

import (
	"bytes"
	"context"
	"sync/atomic"
	"time"

	"memento/chunk"
	"memento/index"
	"memento/repo/lru"
)

// Grouped small files (format 6, FlagMember): a small file's chunk stored
// as a member frame (chunk.ParseMember) naming a slice of a group blob, an
// ordinary data blob whose plaintext is several small files of one backup
// concatenated and compressed as one. Readers get the chunk's plaintext:
// openSealed hands a member to openMember, which reads the group through
// the index from a copy stored whole (a group is never a member or a
// delta: depth 1), slices it and checks the slice against the chunk's ID,
// as for any blob. Decoded groups are kept in a bounded cache of the
// Repository (groups, a repo/lru cache): mount and verify read the members
// of a group one after the other. As for deltas, the link from a member to
// its group is in the member's sealed frame only; the FlagMember bit of
// the pack header and the index says which frames prune and check read
// (RefTargets).

// memberWhat names a member chunk in errors.
func memberWhat(id chunk.ID) string { return "data blob " + id.Short() }

// openMember is openSealed for a member blob: plain is its decrypted frame.
func (r *Repository) openMember(ctx context.Context, plain []byte, space string, t BlobType, id chunk.ID, loc index.Location, mode openMode, stored, endToEnd bool, a blobAlloc) ([]byte, *[]byte, error) {
	what := memberWhat(id)
	if t != DataBlob || loc.Flags&(FlagCompressed|FlagDelta) != 0 {
		return nil, nil, Corruptf(what, "member flag on a %s blob with flags %#02x (pack %s)", t, loc.Flags, ShortHex(loc.Pack))
	}
	m, err := chunk.ParseMember(plain)
	if err != nil {
		return nil, nil, &CorruptError{What: what, Detail: "member frame in pack " + ShortHex(loc.Pack), Err: err}
	}
	if m.Length != loc.RawLength {
		return nil, nil, Corruptf(what, "member of %d bytes, index says %d (pack %s)", m.Length, loc.RawLength, ShortHex(loc.Pack))
	}
	raw, err := r.memberBytes(ctx, space, id, m, loc)
	if err != nil {
		return nil, nil, err
	}
	check := checkRaw
	if endToEnd && !stored {
		check = checkLength
	}
	if err := check(r.ChunkKey(space), raw, t, id, loc); err != nil {
		return nil, nil, err
	}
	if stored {
		raw = plain
	}
	if mode == openPooled {
		out := a.pooled(len(raw))
		*out = append((*out)[:0], raw...)
		return *out, out, nil
	}
	return append(a.get(len(raw)), raw...), nil, nil
}

// memberBytes returns member id's bytes (frame m, at loc): a slice of its
// group's cached plaintext, which the caller must not modify.
func (r *Repository) memberBytes(ctx context.Context, space string, id chunk.ID, m chunk.Member, loc index.Location) ([]byte, error) {
	what := memberWhat(id)
	if m.Group == id {
		return nil, Corruptf(what, "member of itself (pack %s)", ShortHex(loc.Pack))
	}
	group, err := r.groups.Get(ctx, groupKey{StorageSpace(space), m.Group}, func() ([]byte, error) {
		return r.readWhole(ctx, space, what, "group", m.Group, func(index.Location) error { return nil })
	})
	r.groups.touch()
	if err != nil {
		return nil, err
	}
	if uint64(m.Offset)+uint64(m.Length) > uint64(len(group)) {
		return nil, Corruptf(what, "member at %d+%d of group %s of %d bytes (pack %s)", m.Offset, m.Length, m.Group.Short(), len(group), ShortHex(loc.Pack))
	}
	return group[m.Offset : m.Offset+m.Length : m.Offset+m.Length], nil
}

// groupCacheBytes bounds the plaintext of the decoded groups a Repository
// keeps (groups): a few dozen groups of up to 1 MiB, more than the groups a
// mount or a verification reads members of at once.
const groupCacheBytes = 24 << 20

// groupKey names a group: its storage space and ID.
type groupKey struct {
	space string
	id    chunk.ID
}

// groupCacheIdle is how long a Repository keeps its decoded groups once
// nothing reads a member: a long-lived process (the agent between its
// verifications, an idle mount) then holds none of its groupCacheBytes.
const groupCacheIdle = 30 * time.Second

// groupCache is a Repository's cache of decoded groups: the verified
// plaintext of the groups read last, up to groupCacheBytes, least recently
// used out first (repo/lru). Concurrent readers of members of one group
// that is not cached read it once: the first reads, the others wait for it
// (and read it themselves if that read fails). The data it hands out is
// shared and never modified. It empties itself once no member was read for
// idle (touch arms the timer), as the pack pool drops its buffers when its
// last packer ends and a chunk.Pipeline its free list when its last Split
// returns, and when the Repository is closed.
type groupCache struct {
	*lru.Cache[groupKey, []byte]
	idle  time.Duration
	used  atomic.Int64 // time.Now().UnixNano() of the last touch
	armed atomic.Bool  // a timer will look at used
}

func newGroupCache(idle time.Duration) *groupCache {
	return &groupCache{Cache: lru.New[groupKey](groupCacheBytes, func(b []byte) int64 { return int64(len(b)) }), idle: idle}
}

// touch records a use of the cache, which holds a group now, and makes
// sure a timer will empty it once it has not been used for c.idle.
func (c *groupCache) touch() {
	c.used.Store(time.Now().UnixNano())
	if !c.armed.Load() && c.armed.CompareAndSwap(false, true) {
		time.AfterFunc(c.idle, c.expire)
	}
}

// expire is the idle timer: it empties the cache if it was not used for
// c.idle, else looks again when it could be.
func (c *groupCache) expire() {
	if since := time.Duration(time.Now().UnixNano() - c.used.Load()); since < c.idle {
		time.AfterFunc(c.idle-since, c.expire)
		return
	}
	c.Purge()
	c.armed.Store(false)
	// A group cached between the purge and the line above found the
	// timer armed.
	if used, _, _, _ := c.Stats(); used > 0 {
		c.touch()
	}
}

// addGroup caches a copy of group k's verified plaintext data, read by a
// caller that had it at hand (StreamBlobs), unless it is cached or being
// read already.
func (r *Repository) addGroup(k groupKey, data []byte) {
	if e, st := r.groups.Claim(k); st == lru.Own {
		r.groups.Fill(e, bytes.Clone(data), nil)
	}
	r.groups.touch()
}
