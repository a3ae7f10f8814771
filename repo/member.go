package repo

import (
	"bytes"
	"container/list"
	"context"
	"sync"

	"memento/chunk"
	"memento/index"
)

// Grouped small files (format 6, FlagMember): a small file's chunk stored
// as a member frame (chunk.ParseMember) naming a slice of a group blob, an
// ordinary data blob whose plaintext is several small files of one backup
// concatenated and compressed as one. Readers get the chunk's plaintext:
// openSealed hands a member to openMember, which reads the group through
// the index from a copy stored whole (a group is never a member or a
// delta: depth 1), slices it and checks the slice against the chunk's ID,
// as for any blob. Decoded groups are kept in a bounded cache of the
// Repository (groupCache): restore, mount and verify read the members of
// a group one after the other. As for deltas, the link from a member to
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
	group, err := r.groups.get(ctx, groupKey{StorageSpace(space), m.Group}, func() ([]byte, error) {
		return r.readWhole(ctx, space, what, "group", m.Group, func(index.Location) error { return nil })
	})
	if err != nil {
		return nil, err
	}
	if uint64(m.Offset)+uint64(m.Length) > uint64(len(group)) {
		return nil, Corruptf(what, "member at %d+%d of group %s of %d bytes (pack %s)", m.Offset, m.Length, m.Group.Short(), len(group), ShortHex(loc.Pack))
	}
	return group[m.Offset : m.Offset+m.Length : m.Offset+m.Length], nil
}

// groupCacheBytes bounds the plaintext of the decoded groups a Repository
// keeps (groupCache): a few dozen groups of up to 1 MiB, more than the
// groups a restore or a mount reads members of at once.
const groupCacheBytes = 24 << 20

// groupKey names a group: its storage space and ID.
type groupKey struct {
	space string
	id    chunk.ID
}

// groupEntry is a group read or being read: done closes when data or err
// is set.
type groupEntry struct {
	done chan struct{}
	data []byte
	err  error
	elem *list.Element // in the LRU list; nil while being read, or once evicted
}

// groupCache keeps the verified plaintext of the groups read last, up to
// groupCacheBytes, least recently used out first. Concurrent readers of
// members of one group that is not cached read it once: the first reads,
// the others wait for it. Its zero value is ready; the data it hands out
// is shared and never modified.
type groupCache struct {
	mu    sync.Mutex
	m     map[groupKey]*groupEntry
	lru   list.List // of groupKey, most recent first
	bytes int64
	loads int // groups read, for tests
}

// get returns group k's plaintext, calling load to read it unless it is
// cached or being read. A load's error is not kept: the next get tries
// again, and a waiter of a load that failed loads it itself.
func (c *groupCache) get(ctx context.Context, k groupKey, load func() ([]byte, error)) ([]byte, error) {
	for {
		c.mu.Lock()
		if c.m == nil {
			c.m = map[groupKey]*groupEntry{}
		}
		e, ok := c.m[k]
		if !ok {
			e = &groupEntry{done: make(chan struct{})}
			c.m[k] = e
			c.loads++
			c.mu.Unlock()
			return c.fill(k, e, load)
		}
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
		}
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			return e.data, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The read failed (its entry is gone): this reader reads it again,
		// for an error naming its own member, or for another copy.
	}
}

// add caches a copy of group k's verified plaintext data, read by a
// caller that had it at hand (StreamBlobs), unless it is cached already.
func (c *groupCache) add(k groupKey, data []byte) {
	if len(data) > groupCacheBytes/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		return
	}
	if c.m == nil {
		c.m = map[groupKey]*groupEntry{}
	}
	e := &groupEntry{done: make(chan struct{}), data: bytes.Clone(data)}
	close(e.done)
	c.m[k] = e
	c.insert(k, e)
}

// insert puts loaded entry e of k first in the LRU list and evicts the
// least recently used groups past the bound. c.mu is held.
func (c *groupCache) insert(k groupKey, e *groupEntry) {
	e.elem = c.lru.PushFront(k)
	c.bytes += int64(len(e.data))
	for c.bytes > groupCacheBytes {
		old := c.lru.Remove(c.lru.Back()).(groupKey)
		oe := c.m[old]
		delete(c.m, old)
		oe.elem = nil
		c.bytes -= int64(len(oe.data))
	}
}

// fill loads entry e of k, caches it if it fits, and wakes its waiters.
func (c *groupCache) fill(k groupKey, e *groupEntry, load func() ([]byte, error)) ([]byte, error) {
	defer close(e.done)
	data, err := load()
	c.mu.Lock()
	defer c.mu.Unlock()
	e.data, e.err = data, err
	if err != nil || len(data) > groupCacheBytes/2 {
		delete(c.m, k)
		return data, err
	}
	c.insert(k, e)
	return data, nil
}
