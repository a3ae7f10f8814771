package fusefs

import (
	"container/list"
	"context"
	"sync"
)

// lru is a memory-bounded least-recently-used cache that also merges
// concurrent loads of the same key: when the kernel's readahead, our own
// prefetcher and a second reader all want chunk 17 at once, it is fetched and
// decrypted once. Values are immutable once loaded, so they are handed out
// without copying; eviction only drops the cache's reference.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	limit int64
	used  int64
	order list.List // of *lruEntry, most recently used first; loaded entries only
	m     map[K]*lruEntry[K, V]
	cost  func(V) int64

	hits, misses, evictions int64
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	err  error
	cost int64
	done chan struct{} // closed when val or err is set
	elem *list.Element // nil while loading, or once evicted
}

func newLRU[K comparable, V any](limit int64, cost func(V) int64) *lru[K, V] {
	return &lru[K, V]{limit: limit, m: map[K]*lruEntry[K, V]{}, cost: cost}
}

// get returns the value of key, calling load (in this goroutine) when it is
// neither cached nor being loaded by someone else. Errors are not cached: the
// next get tries again, so a transient backend failure does not stick. ctx
// only bounds the wait for another goroutine's load.
func (c *lru[K, V]) get(ctx context.Context, key K, load func() (V, error)) (V, error) {
	c.mu.Lock()
	if e, ok := c.m[key]; ok {
		if e.elem != nil {
			c.order.MoveToFront(e.elem)
			c.hits++
			c.mu.Unlock()
			return e.val, nil
		}
		c.mu.Unlock()
		select {
		case <-e.done:
			return e.val, e.err
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
	}
	c.misses++
	e := &lruEntry[K, V]{key: key, done: make(chan struct{})}
	c.m[key] = e
	c.mu.Unlock()

	v, err := load()
	c.mu.Lock()
	e.val, e.err = v, err
	if err != nil {
		delete(c.m, key)
	} else {
		e.cost = c.cost(v)
		e.elem = c.order.PushFront(e)
		c.used += e.cost
		c.evict()
	}
	c.mu.Unlock()
	close(e.done)
	return v, err
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
	}
}

// stats returns the bytes held and the hit, miss and eviction counts.
func (c *lru[K, V]) stats() (used, hits, misses, evictions int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.hits, c.misses, c.evictions
}
