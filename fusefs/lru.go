package fusefs

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// lru is a memory-bounded least-recently-used cache that also merges
// concurrent loads of the same key: when the kernel's readahead, our own
// prefetcher and a second reader all want chunk 17 at once, it is fetched and
// decrypted once. Values are immutable once loaded, so they are handed out
// without copying; eviction only drops the cache's reference.
//
// With release set, a value's memory is recycled: a reader pins the entries
// it claims (claimAll with pin) and unpins them once it has copied what it
// needs, and release is called with a value once the cache has dropped it
// (evicted, forgotten, or never cached) and no reader holds a pin on it.
type lru[K comparable, V any] struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	order   list.List // of *lruEntry, most recently used first; loaded entries only
	m       map[K]*lruEntry[K, V]
	cost    func(V) int64
	release func(V) // nil: values are left to the garbage collector

	hits, misses, evictions int64
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	err  error
	cost int64
	done chan struct{} // closed when val or err is set
	elem *list.Element // nil while loading, or once evicted
	// forgotten: forget was asked for the entry while it was loading; fill
	// hands the value to the waiters without caching it.
	forgotten bool
	// pins counts the readers using val (claimAll with pin, until unpin);
	// dropped says the cache no longer holds the entry: the last of
	// dropped and pins == 0 to happen releases val.
	pins    int
	dropped bool
}

func newLRU[K comparable, V any](limit int64, cost func(V) int64) *lru[K, V] {
	return &lru[K, V]{limit: limit, m: map[K]*lruEntry[K, V]{}, cost: cost}
}

// get returns the value of key, calling load (in this goroutine) when it is
// neither cached nor being loaded by someone else. Errors are not cached: the
// next get tries again, so a transient backend failure does not stick. ctx
// only bounds the wait for another goroutine's load.
func (c *lru[K, V]) get(ctx context.Context, key K, load func() (V, error)) (V, error) {
	e, st := c.claim(key)
	switch st {
	case claimHit:
		return e.val, nil
	case claimWait:
		return e.wait(ctx)
	}
	v, err := load()
	c.fill(e, v, err)
	return v, err
}

// claimState says what claim found.
type claimState int

const (
	claimHit  claimState = iota // cached: the entry's val is the value
	claimWait                   // someone else is loading it: wait on the entry
	claimOwn                    // nobody has it: the caller loads it and must fill the entry
)

// claim looks key up, and when it is neither cached nor being loaded makes
// the caller its loader: the caller must then call fill exactly once (other
// goroutines wait for it), so that a batch loader can claim many keys, load
// them together and fill them one by one as they arrive.
func (c *lru[K, V]) claim(key K) (*lruEntry[K, V], claimState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claimLocked(key)
}

// claimAll claims every key of keys under one lock (a 1 MiB read of a page
// file is 64 chunks) and calls fn with each one's entry and state, in order.
// fn runs with the cache locked: it must only record what it is given. With
// pin, every entry is pinned (its value is not released until unpin), which
// a caller that uses the values must do when the cache has a release.
func (c *lru[K, V]) claimAll(keys []K, pin bool, fn func(i int, e *lruEntry[K, V], st claimState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		e, st := c.claimLocked(k)
		if pin {
			e.pins++
		}
		fn(i, e, st)
	}
}

// unpin ends the pins claimAll took on entries; a value the cache has
// dropped meanwhile is released by its last unpin.
func (c *lru[K, V]) unpin(entries []*lruEntry[K, V]) {
	if len(entries) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		if e.pins <= 0 {
			panic("fusefs: cache entry unpinned more often than pinned")
		}
		e.pins--
		c.releaseLocked(e)
	}
}

// drop marks an entry as no longer held by the cache (the caller removed
// it from m and order) and releases its value if nobody has it pinned.
func (c *lru[K, V]) dropLocked(e *lruEntry[K, V]) {
	e.dropped = true
	c.releaseLocked(e)
}

func (c *lru[K, V]) releaseLocked(e *lruEntry[K, V]) {
	if !e.dropped || e.pins > 0 || c.release == nil || e.err != nil {
		return
	}
	select {
	case <-e.done:
	default:
		return // still loading: fill releases it
	}
	c.release(e.val)
	var zero V
	e.val = zero
	e.err = errReleased
}

func (c *lru[K, V]) claimLocked(key K) (*lruEntry[K, V], claimState) {
	if e, ok := c.m[key]; ok {
		if e.elem != nil {
			c.order.MoveToFront(e.elem)
			c.hits++
			return e, claimHit
		}
		return e, claimWait
	}
	c.misses++
	e := &lruEntry[K, V]{key: key, done: make(chan struct{})}
	c.m[key] = e
	return e, claimOwn
}

// fill completes an entry claimed with claimOwn: a value is cached (and may
// be evicted at once if it alone exceeds the limit), an error is handed to
// the waiters and forgotten.
func (c *lru[K, V]) fill(e *lruEntry[K, V], v V, err error) {
	c.mu.Lock()
	e.val, e.err = v, err
	close(e.done)
	if err != nil || e.forgotten {
		delete(c.m, e.key)
		c.dropLocked(e)
	} else {
		e.cost = c.cost(v)
		e.elem = c.order.PushFront(e)
		c.used += e.cost
		c.evict()
	}
	c.mu.Unlock()
}

// wait returns the value or error of an entry once its loader filled it.
func (e *lruEntry[K, V]) wait(ctx context.Context) (V, error) {
	select {
	case <-e.done:
		return e.val, e.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// contains reports whether key is cached or being loaded.
func (c *lru[K, V]) contains(key K) bool {
	c.mu.Lock()
	_, ok := c.m[key]
	c.mu.Unlock()
	return ok
}

// evict drops least recently used entries until the cache fits its limit.
// The entry just added may itself go if it alone is larger than the limit;
// its loader still returns it to the caller that asked.
func (c *lru[K, V]) evict() {
	for c.used > c.limit {
		back := c.order.Back()
		if back == nil {
			return
		}
		e := back.Value.(*lruEntry[K, V])
		c.order.Remove(back)
		e.elem = nil
		delete(c.m, e.key)
		c.used -= e.cost
		c.evictions++
		c.dropLocked(e)
	}
}

// stats returns the bytes held and the hit, miss and eviction counts.
func (c *lru[K, V]) stats() (used, hits, misses, evictions int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.hits, c.misses, c.evictions
}

// forget drops the cached entries of keys. An entry being loaded is dropped
// when its loader fills it (its waiters still get the value): a sequential
// reader that overtakes the prefetchers forgets chunks they are still
// decoding, and those would otherwise stay cached behind it for good.
// Values are never recycled, so a reader still holding one is unaffected; a
// later get loads it again.
func (c *lru[K, V]) forget(keys []K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		e, ok := c.m[k]
		if !ok {
			continue
		}
		if e.elem == nil { // loading (evicted entries are not in m)
			e.forgotten = true
			continue
		}
		c.order.Remove(e.elem)
		e.elem = nil
		delete(c.m, k)
		c.used -= e.cost
		c.dropLocked(e)
	}
}

// errReleased is the error of an entry whose value was released: nobody
// can see it (it was dropped and unpinned), but a bug that did would get an
// error instead of recycled bytes.
var errReleased = errors.New("chunk memory released")
