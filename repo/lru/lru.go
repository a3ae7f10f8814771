// Package lru is a byte-bounded least-recently-used cache that merges
// concurrent loads of one key: the FUSE mount's chunks and trees
// (fusefs) and a repository's decoded groups of small files (repo) are
// read once however many readers want them at once.
package lru

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// Cache is a memory-bounded least-recently-used cache that also merges
// concurrent loads of the same key: when the kernel's readahead, the
// mount's prefetcher and a second reader all want chunk 17 at once, it is
// fetched and decrypted once. Values are immutable once loaded, so they are
// handed out without copying; eviction only drops the cache's reference.
//
// With Release set, a value's memory is recycled: a reader pins the entries
// it claims (ClaimAll with pin) and unpins them once it has copied what it
// needs, and Release is called with a value once the cache has dropped it
// (evicted, forgotten, or never cached) and no reader holds a pin on it.
type Cache[K comparable, V any] struct {
	// Release, if set (before the cache is first used), takes back the
	// memory of values the cache dropped and no reader pins; nil leaves
	// them to the garbage collector.
	Release func(V)

	mu    sync.Mutex
	limit int64
	used  int64
	order list.List // of *Entry, most recently used first; loaded entries only
	m     map[K]*Entry[K, V]
	cost  func(V) int64

	hits, misses, evictions int64
}

// Entry is a key's entry: its value once loaded, or a load in progress.
type Entry[K comparable, V any] struct {
	key  K
	val  V
	err  error
	cost int64
	done chan struct{} // closed when val or err is set
	elem *list.Element // nil while loading, or once evicted
	// forgotten: Forget was asked for the entry while it was loading; Fill
	// hands the value to the waiters without caching it.
	forgotten bool
	// pins counts the readers using val (ClaimAll with pin, until Unpin);
	// dropped says the cache no longer holds the entry: the last of
	// dropped and pins == 0 to happen releases val.
	pins    int
	dropped bool
}

// New returns a cache of values whose costs (cost) add up to limit at most.
func New[K comparable, V any](limit int64, cost func(V) int64) *Cache[K, V] {
	return &Cache[K, V]{limit: limit, m: map[K]*Entry[K, V]{}, cost: cost}
}

// Key is the entry's key.
func (e *Entry[K, V]) Key() K { return e.key }

// Value is the entry's value: valid once the entry is loaded (a Hit, after
// Wait or Fill), and for as long as the caller pins it when the cache has a
// Release.
func (e *Entry[K, V]) Value() V { return e.val }

// Result is the value or error its loader filled the entry with: for the
// loader itself, after Fill (a waiter calls Wait).
func (e *Entry[K, V]) Result() (V, error) { return e.val, e.err }

// Get returns the value of key, calling load (in this goroutine) when it is
// neither cached nor being loaded by someone else. Errors are not cached:
// the next Get tries again, and a Get that waited on a load that failed
// loads the value itself (a transient backend failure does not stick, and
// each caller gets an error of its own load). ctx only bounds the wait for
// another goroutine's load. Get pins nothing: it is for caches without a
// Release (a value it returns may be released, evicted at once or
// forgotten while loading, as it is handed out); readers of a cache with a
// Release use ClaimAll with pin.
func (c *Cache[K, V]) Get(ctx context.Context, key K, load func() (V, error)) (V, error) {
	for {
		e, st := c.Claim(key)
		switch st {
		case Hit:
			return e.val, nil
		case Own:
			v, err := load()
			c.Fill(e, v, err)
			return v, err
		}
		v, err := e.Wait(ctx)
		if err == nil {
			return v, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return v, cerr
		}
		// The load failed (its entry is gone): load it again.
	}
}

// State says what Claim found.
type State int

const (
	Hit  State = iota // cached: the entry's Value is the value
	Wait              // someone else is loading it: Wait on the entry
	Own               // nobody has it: the caller loads it and must Fill the entry
)

// Claim looks key up, and when it is neither cached nor being loaded makes
// the caller its loader: the caller must then call Fill exactly once (other
// goroutines wait for it), so that a batch loader can claim many keys, load
// them together and fill them one by one as they arrive.
func (c *Cache[K, V]) Claim(key K) (*Entry[K, V], State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.claimLocked(key)
}

// ClaimAll claims every key of keys under one lock (a 1 MiB read of a page
// file is 64 chunks) and calls fn with each one's entry and state, in order.
// fn runs with the cache locked: it must only record what it is given. With
// pin, every entry is pinned (its value is not released until Unpin), which
// a caller that uses the values must do when the cache has a Release.
func (c *Cache[K, V]) ClaimAll(keys []K, pin bool, fn func(i int, e *Entry[K, V], st State)) {
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

// Unpin ends the pins ClaimAll took on entries; a value the cache has
// dropped meanwhile is released by its last Unpin.
func (c *Cache[K, V]) Unpin(entries []*Entry[K, V]) {
	if len(entries) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		if e.pins <= 0 {
			panic("lru: cache entry unpinned more often than pinned")
		}
		e.pins--
		c.releaseLocked(e)
	}
}

// dropLocked marks an entry as no longer held by the cache (the caller
// removed it from m and order) and releases its value if nobody has it
// pinned.
func (c *Cache[K, V]) dropLocked(e *Entry[K, V]) {
	e.dropped = true
	c.releaseLocked(e)
}

func (c *Cache[K, V]) releaseLocked(e *Entry[K, V]) {
	if !e.dropped || e.pins > 0 || c.Release == nil || e.err != nil {
		return
	}
	select {
	case <-e.done:
	default:
		return // still loading: Fill releases it
	}
	c.Release(e.val)
	var zero V
	e.val = zero
	e.err = errReleased
}

func (c *Cache[K, V]) claimLocked(key K) (*Entry[K, V], State) {
	if e, ok := c.m[key]; ok {
		if e.elem != nil {
			c.order.MoveToFront(e.elem)
			c.hits++
			return e, Hit
		}
		return e, Wait
	}
	c.misses++
	e := &Entry[K, V]{key: key, done: make(chan struct{})}
	c.m[key] = e
	return e, Own
}

// Fill completes an entry claimed with Own: a value is cached (and may be
// evicted at once if it alone exceeds the limit), an error is handed to
// the waiters and forgotten.
func (c *Cache[K, V]) Fill(e *Entry[K, V], v V, err error) {
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

// Wait returns the value or error of an entry once its loader filled it.
func (e *Entry[K, V]) Wait(ctx context.Context) (V, error) {
	select {
	case <-e.done:
		return e.val, e.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// Contains reports whether key is cached or being loaded.
func (c *Cache[K, V]) Contains(key K) bool {
	c.mu.Lock()
	_, ok := c.m[key]
	c.mu.Unlock()
	return ok
}

// evict drops least recently used entries until the cache fits its limit.
// The entry just added may itself go if it alone is larger than the limit;
// its loader still returns it to the caller that asked.
func (c *Cache[K, V]) evict() {
	for c.used > c.limit {
		back := c.order.Back()
		if back == nil {
			return
		}
		e := back.Value.(*Entry[K, V])
		c.order.Remove(back)
		e.elem = nil
		delete(c.m, e.key)
		c.used -= e.cost
		c.evictions++
		c.dropLocked(e)
	}
}

// Stats returns the cost held and the hit, miss (loads started) and
// eviction counts.
func (c *Cache[K, V]) Stats() (used, hits, misses, evictions int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.hits, c.misses, c.evictions
}

// Forget drops the cached entries of keys. An entry being loaded is dropped
// when its loader fills it (its waiters still get the value): a sequential
// reader that overtakes the prefetchers forgets chunks they are still
// decoding, and those would otherwise stay cached behind it for good.
// Values are never recycled while pinned, so a reader holding one is
// unaffected; a later Get loads it again.
func (c *Cache[K, V]) Forget(keys []K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e, ok := c.m[k]; ok {
			c.forgetLocked(e)
		}
	}
}

// Purge drops every entry, as Forget of every key: a long-lived process
// that goes idle keeps nothing.
func (c *Cache[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.m {
		c.forgetLocked(e)
	}
}

func (c *Cache[K, V]) forgetLocked(e *Entry[K, V]) {
	if e.elem == nil { // loading (evicted entries are not in m)
		e.forgotten = true
		return
	}
	c.order.Remove(e.elem)
	e.elem = nil
	delete(c.m, e.key)
	c.used -= e.cost
	c.dropLocked(e)
}

// errReleased is the error of an entry whose value was released: nobody
// can see it (it was dropped and unpinned), but a bug that did would get an
// error instead of recycled bytes.
var errReleased = errors.New("lru: cached value released")
